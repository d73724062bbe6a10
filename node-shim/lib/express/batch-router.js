'use strict';

/**
 * Express routes for batches, and the page that uses them:
 *
 *   POST /api/batches                    multipart: photos (any field name, several) or one zip;
 *                                        text fields: preset, bgColor, maxSize, format, trim, ...
 *        -> 202 {id, total, events, results}
 *   GET  /api/batches/:id                the batch as JSON (each photo's status, meta, error)
 *   GET  /api/batches/:id/events         server-sent events: one `progress` per photo
 *                                        ({done, failed, total, index, name, ok, error}), then `end`;
 *                                        a late listener first gets the events it missed
 *   GET  /api/batches/:id/items/:index   one result image (thumbnails)
 *   GET  /api/batches/:id/results.zip    the results and report.json
 *   GET  /                               the page (public/, no build step)
 *
 * Mount it in one line on an app: `app.use(createBatchRouter({ remover: pool }))`,
 * where the remover is a Pool or a QueueClient. Needs express and multer
 * (the app's own). A batch is kept by the app server that took it (BatchStore:
 * state in memory and on disk, inputs and results on disk), in a directory
 * that outlives the process: after a restart (SIGTERM, SIGKILL, a crash) the
 * next process answers for it and resumes its unfinished photos. With several
 * app servers, route a batch's requests to the server that took it (sticky
 * sessions), while its photos run on any consumer of the queue. What each
 * upload may cost is bounded before it is paid
 * (docs/reliability.md#round-2).
 *
 * @module pyworker-cutout/express/batch-router
 */

const fs = require('node:fs');
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const { Batch, startBatch, writeBatchZip, BATCH_DEFAULTS } = require('../batches');
const { BatchStore } = require('../batch-store');
const { readZip, isZip, cleanName, uniqueName } = require('../zip-reader');
const { parseRequestOptions } = require('../request-options');
const { requirePeer } = require('../optional');
const { HttpError, errorHandler } = require('./http-errors');
const { optionsFromFields } = require('./fields');
const { formParser } = require('./form');
const { refuseAfterBody } = require('./router');
const { ByteBudget } = require('./byte-budget');

const MiB = 1024 * 1024;
const PUBLIC_DIR = path.join(__dirname, '..', '..', 'public');
/** multipart headers and the text fields around the files */
const FORM_SLACK = 64 * 1024;
/** The worker's own --max-input-mb default: a larger photo would only come back input_too_large. */
const WORKER_MAX_INPUT_MB = 10;

/** @param {number} n */
const mb = (n) => `${(n / MiB).toFixed(1)}MB`;

/**
 * @param {object} opts
 * @param {{removeWithMeta(image: Buffer, options?: Record<string, any>): Promise<any>, options?: {maxInputMb?: number|null}}} opts.remover a Pool or a QueueClient
 * @param {number} [opts.maxUploadBytes] one upload request, all its files and zips together (default BATCH_DEFAULTS)
 * @param {number} [opts.maxTotalBytes] held at once by all batch uploads: bodies, then each photo until it ran
 * @param {number} [opts.maxPhotoBytes] one photo (a zip's: inflated); larger ones fail input_too_large without
 *   being sent (default: the remover's maxInputMb, else the worker's 10 MB)
 * @param {number} [opts.maxFiles] photos of one batch (default BATCH_DEFAULTS.maxFiles)
 * @param {number} [opts.maxBytes] their bytes, a zip's inflated (default BATCH_DEFAULTS.maxBytes)
 * @param {number} [opts.concurrency] photos of one batch sent at once
 * @param {number} [opts.queueFullWaitMs] how long a photo answered queue_full keeps waiting its turn
 * @param {number} [opts.ttlMs] a finished batch is kept this long
 * @param {number} [opts.maxBatches] batches kept (running or finished)
 * @param {boolean} [opts.page] serve the page at GET / (default true)
 * @param {number} [opts.retryAfterSeconds] Retry-After of a 503 (default 2)
 * @param {string|false} [opts.storeDir] where batches (state, inputs, results) are kept across restarts; default:
 *   one directory per app and user under the OS's temporary directory (batch-store.js); false: a directory of
 *   the process's own, removed at exit (a restart loses its batches)
 * @param {BatchStore} [opts.store]
 */
function createBatchRouter(opts) {
  // Its zip upload and results.zip need fflate: said when the app starts, not at the first download.
  requirePeer('fflate', 'createBatchRouter (zip uploads and results.zip)');
  const express = requirePeer('express', 'createBatchRouter');
  if (!opts || !opts.remover || typeof opts.remover.removeWithMeta !== 'function') throw new TypeError('createBatchRouter needs {remover}: a Pool or a QueueClient');
  const remover = opts.remover;
  const maxFiles = opts.maxFiles ?? BATCH_DEFAULTS.maxFiles;
  const maxBytes = opts.maxBytes ?? BATCH_DEFAULTS.maxBytes;
  const maxUploadBytes = opts.maxUploadBytes ?? BATCH_DEFAULTS.maxUploadBytes;
  const maxPhotoBytes = opts.maxPhotoBytes ?? (remover.options?.maxInputMb ?? WORKER_MAX_INPUT_MB) * MiB;
  const budget = new ByteBudget(opts.maxTotalBytes ?? BATCH_DEFAULTS.maxTotalBytes);
  const store = opts.store || new BatchStore({ ttlMs: opts.ttlMs, maxBatches: opts.maxBatches, dir: opts.storeDir });
  const pace = { concurrency: opts.concurrency, queueFullWaitMs: opts.queueFullWaitMs };
  // Batches an earlier process of this app left unfinished (restarted, killed): their photos run again now.
  store.resume(remover, pace);
  const parseForm = formParser({
    limits: { fileSize: maxUploadBytes, files: maxFiles, fields: 30, fieldSize: 64 * 1024 },
    tooManyFiles: `a batch holds at most ${maxFiles} photos (maxFiles)`,
  });

  /**
   * Admission by bytes before the body is read, as the single-photo router's: the request's Content-Length is
   * taken from the budget of all batch uploads, and given back as its bytes are let go.
   */
  const admit = (/** @type {any} */ req, /** @type {any} */ res, /** @type {any} */ next) => {
    const declared = Number(req.headers['content-length']);
    if (!req.headers['content-length'] || !Number.isFinite(declared) || declared < 0) {
      res.set('Connection', 'close');
      return next(new HttpError(411, 'bad_request', 'send the batch with a Content-Length (a chunked upload cannot be budgeted before it is read)'));
    }
    if (declared > maxUploadBytes + FORM_SLACK) {
      res.set('Connection', 'close');
      return next(new HttpError(413, 'input_too_large', `Request size (${mb(declared)}) exceeds maximum (${mb(maxUploadBytes)}: all files and zips of one batch together)`));
    }
    const ledger = budget.ledger();
    if (!ledger.tryTake(declared)) {
      const err = new HttpError(503, 'queue_full', `batch uploads in progress hold ${mb(budget.held)} (maxTotalBytes ${mb(budget.total)}); retry later`);
      return refuseAfterBody(req, res, next, err, maxUploadBytes + FORM_SLACK);
    }
    req.batchLedger = ledger;
    // Whatever becomes of the request, its bytes come back; a batch that starts takes the ledger over.
    const done = () => !req.batchHandedOver && ledger.close();
    res.once('finish', done);
    res.once('close', done);
    next();
  };

  const router = express.Router();

  router.post('/api/batches', admit, parseForm, async (/** @type {any} */ req, /** @type {any} */ res, /** @type {any} */ next) => {
    const ledger = req.batchLedger;
    try {
      const options = optionsFromFields(req.body);
      parseRequestOptions(options); // a bad option is a 400 now, not N failed photos
      const uploaded = /** @type {any[]} */ (req.files || []);
      req.files = null;
      if (uploaded.length === 0) throw new HttpError(400, 'bad_request', 'send photos (or one zip of photos) as multipart/form-data files');
      /** @type {({name: string, data: Buffer}|{name: string, error: {code: string, message: string}})[]} */
      const files = [];
      /** @type {{from: string, to: string}[]} */
      const renamed = [];
      const taken = new Set();
      let bytes = 0; // the photos' bytes (a zip's inflated)
      for (const f of uploaded) {
        const buf = /** @type {Buffer} */ (f.buffer);
        f.buffer = null;
        if (isZip(buf)) {
          const z = await readZip(buf, {
            maxFiles: maxFiles - files.length,
            maxBytes: maxBytes - bytes,
            maxEntryBytes: maxPhotoBytes,
            taken,
            // A kept store writes every photo to disk before the 202 and drops them from memory: a stored photo
            // can be a view of the upload (no copy), let go with it.
            views: store.persistent,
            reserve: (n) => {
              if (!ledger.tryTake(n)) throw new HttpError(503, 'queue_full', `batch uploads in progress hold ${mb(budget.held)} (maxTotalBytes ${mb(budget.total)}); retry later`);
            },
          });
          for (const p of z.photos) if ('data' in p) bytes += p.data.length;
          files.push(...z.photos);
          renamed.push(...z.renamed);
        } else {
          const raw = String(f.originalname || `photo-${files.length + 1}`);
          const name = uniqueName(cleanName(raw), taken);
          if (name !== path.posix.basename(raw)) renamed.push({ from: raw.slice(0, 60), to: name });
          if (files.length + 1 > maxFiles) throw new HttpError(413, 'input_too_large', `a batch holds at most ${maxFiles} photos (maxFiles)`);
          if (buf.length > maxPhotoBytes) {
            files.push({ name, error: { code: 'input_too_large', message: `File size (${mb(buf.length)}) exceeds maximum (${mb(maxPhotoBytes)})` } });
            continue;
          }
          files.push({ name, data: buf });
          bytes += buf.length;
        }
        if (bytes > maxBytes) throw new HttpError(413, 'input_too_large', `the batch's photos are ${mb(bytes)}, more than ${mb(maxBytes)} (maxBytes)`);
      }
      // The upload's other bytes (zips, multipart framing) are let go now; the photos are held until they ran.
      ledger.give(ledger.held - bytes);
      // The store admits the batch before any photo is sent: a refused batch (503) costs the remover nothing.
      const batch = new Batch(files, randomUUID());
      store.admit();
      await store.add(batch, { files, options });
      // Kept on disk: each photo is read back when its turn comes, and the upload's memory is let go now.
      const run = store.persistent ? store.inputsOf(batch, files) : files;
      startBatch(batch, run, remover, options, {
        ...pace,
        keep: (item, r) => store.keep(item, r, batch.id),
        inputDone: (i, n) => ledger.give(n),
        resumable: store.persistent,
      });
      req.batchHandedOver = true;
      batch.finished.then(() => ledger.close());
      const base = `${req.baseUrl}/api/batches/${batch.id}`;
      res.status(202).json({ id: batch.id, total: batch.total, events: `${base}/events`, results: `${base}/results.zip`, renamed });
    } catch (err) {
      next(err);
    }
  });

  /** @param {{params: Record<string, string>}} req */
  const batchOf = (req) => {
    const b = store.get(String(req.params.id));
    if (!b) throw new HttpError(404, 'not_found', `no batch ${req.params.id} here (unknown, or expired after ${Math.round(store.ttlMs / 1000)} s)`);
    return b;
  };

  router.get('/api/batches/:id', (/** @type {any} */ req, /** @type {any} */ res) => res.json(batchOf(req).toJSON()));

  router.get('/api/batches/:id/events', (/** @type {any} */ req, /** @type {any} */ res) => {
    const b = batchOf(req);
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    /** @param {string} event @param {unknown} data */
    const send = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    // Replay and subscribe in one synchronous step: no event is missed or sent twice.
    for (const ev of b.history) send('progress', ev);
    if (b.finishedAt !== null) {
      send('end', b.progress());
      res.end();
      return;
    }
    /** @param {unknown} ev */
    const onProgress = (ev) => send('progress', ev);
    /** @param {unknown} p */
    const onEnd = (p) => {
      send('end', p);
      res.end();
    };
    b.on('progress', onProgress);
    b.once('end', onEnd);
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    res.on('close', () => {
      clearInterval(ping);
      b.off('progress', onProgress);
      b.off('end', onEnd);
    });
  });

  router.get('/api/batches/:id/items/:index', (/** @type {any} */ req, /** @type {any} */ res) => {
    const it = batchOf(req).items[Number(req.params.index)];
    if (!it) throw new HttpError(404, 'not_found', `no photo ${req.params.index} in batch ${req.params.id}`);
    if (!it.result && !it.file) throw new HttpError(404, 'not_found', it.error ? `photo ${it.index} failed: ${it.error.code}` : `photo ${it.index} is not done yet`);
    res.set({ 'Content-Type': it.mime || 'application/octet-stream', 'Cache-Control': 'private, max-age=3600' });
    if (it.result) return res.send(it.result);
    res.set('Content-Length', String(it.resultBytes));
    fs.createReadStream(/** @type {string} */ (it.file))
      .on('error', () => res.destroy())
      .pipe(res);
  });

  router.get('/api/batches/:id/results.zip', (/** @type {any} */ req, /** @type {any} */ res) => {
    const b = batchOf(req);
    // A zip of a batch still running holds what has finished so far; report.json says which.
    res.set({ 'Content-Type': 'application/zip', 'Content-Disposition': `attachment; filename="batch-${b.id.slice(0, 8)}.zip"`, 'Cache-Control': 'no-store' });
    // Streamed from the results on disk with back-pressure: never built in memory.
    writeBatchZip(b, res).catch(() => res.destroy());
  });

  if (opts.page !== false) router.use(express.static(PUBLIC_DIR, { index: 'index.html', maxAge: 0 }));

  // Errors of these routes: JSON {error: {code, message}}, as the single-photo router's.
  router.use('/api/batches', errorHandler({ retryAfterSeconds: opts.retryAfterSeconds }));

  return router;
}

module.exports = { createBatchRouter, PUBLIC_DIR };
