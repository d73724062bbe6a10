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
 * (the app's own). Batches live in this process (BatchStore); with several
 * app servers, route a batch's requests to the server that took it (sticky
 * sessions), while its photos run on any consumer of the queue.
 *
 * @module pyworker-node/express/batch-router
 */

const path = require('node:path');
const { runBatch, batchZip, photosFromZip, isZip, BatchStore, BATCH_DEFAULTS } = require('../batches');
const { parseRequestOptions } = require('../request-options');
const { requirePeer } = require('../optional');
const { HttpError, errorHandler } = require('./http-errors');
const { optionsFromFields } = require('./fields');
const { formParser } = require('./form');

const MiB = 1024 * 1024;
const PUBLIC_DIR = path.join(__dirname, '..', '..', 'public');

/**
 * @param {object} opts
 * @param {{removeWithMeta: Function}} opts.remover a Pool or a QueueClient
 * @param {number} [opts.maxUploadBytes] one uploaded file (a photo or the zip); default 100 MiB
 * @param {number} [opts.maxFiles] photos of one batch (default BATCH_DEFAULTS.maxFiles)
 * @param {number} [opts.maxBytes] their bytes, a zip's uncompressed (default BATCH_DEFAULTS.maxBytes)
 * @param {number} [opts.concurrency] photos of one batch sent at once
 * @param {number} [opts.ttlMs] a finished batch is kept this long
 * @param {boolean} [opts.page] serve the page at GET / (default true)
 * @param {number} [opts.retryAfterSeconds] Retry-After of a 503 (default 2)
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
  const store = opts.store || new BatchStore({ ttlMs: opts.ttlMs });
  const parseForm = formParser({
    limits: { fileSize: opts.maxUploadBytes ?? 100 * MiB, files: maxFiles, fields: 30 },
    tooManyFiles: `a batch holds at most ${maxFiles} photos (maxFiles)`,
  });

  const router = express.Router();

  router.post('/api/batches', parseForm, (/** @type {any} */ req, /** @type {any} */ res, /** @type {any} */ next) => {
    try {
      const options = optionsFromFields(req.body);
      parseRequestOptions(options); // a bad option is a 400 now, not N failed photos
      const uploaded = /** @type {any[]} */ (req.files || []);
      if (uploaded.length === 0) throw new HttpError(400, 'bad_request', 'send photos (or one zip of photos) as multipart/form-data files');
      /** @type {{name: string, data: Buffer}[]} */
      let files = [];
      for (const f of uploaded) {
        if (isZip(f.buffer)) files = files.concat(photosFromZip(f.buffer, { maxFiles: maxFiles - files.length, maxBytes }));
        else files.push({ name: f.originalname || `photo-${files.length + 1}`, data: f.buffer });
      }
      if (files.length > maxFiles) throw new HttpError(413, 'input_too_large', `a batch holds at most ${maxFiles} photos (maxFiles), got ${files.length}`);
      const total = files.reduce((a, f) => a + f.data.length, 0);
      if (total > maxBytes) throw new HttpError(413, 'input_too_large', `the batch's photos are ${(total / MiB).toFixed(1)}MB, more than ${(maxBytes / MiB).toFixed(0)}MB (maxBytes)`);
      const batch = store.add(runBatch(remover, files, options, { concurrency: opts.concurrency }));
      const base = `${req.baseUrl}/api/batches/${batch.id}`;
      res.status(202).json({ id: batch.id, total: batch.total, events: `${base}/events`, results: `${base}/results.zip` });
    } catch (err) {
      next(err);
    }
  });

  /** @param {import('express').Request} req */
  const batchOf = (req) => {
    const b = store.get(String(req.params.id));
    if (!b) throw new HttpError(404, 'not_found', `no batch ${req.params.id} here (unknown, or expired after ${Math.round(store.ttlMs / 1000)} s)`);
    return b;
  };

  router.get('/api/batches/:id', (req, res) => res.json(batchOf(req).toJSON()));

  router.get('/api/batches/:id/events', (req, res) => {
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

  router.get('/api/batches/:id/items/:index', (req, res) => {
    const it = batchOf(req).items[Number(req.params.index)];
    if (!it) throw new HttpError(404, 'not_found', `no photo ${req.params.index} in batch ${req.params.id}`);
    if (!it.result) throw new HttpError(404, 'not_found', it.error ? `photo ${it.index} failed: ${it.error.code}` : `photo ${it.index} is not done yet`);
    res.set({ 'Content-Type': it.mime || 'application/octet-stream', 'Cache-Control': 'private, max-age=3600' }).send(it.result);
  });

  router.get('/api/batches/:id/results.zip', (req, res) => {
    const b = batchOf(req);
    // A zip of a batch still running holds what has finished so far; report.json says which.
    res.set({ 'Content-Type': 'application/zip', 'Content-Disposition': `attachment; filename="batch-${b.id.slice(0, 8)}.zip"`, 'Cache-Control': 'no-store' });
    res.send(batchZip(b));
  });

  if (opts.page !== false) router.use(express.static(PUBLIC_DIR, { index: 'index.html', maxAge: 0 }));

  // Errors of these routes: JSON {error: {code, message}}, as the single-photo router's.
  router.use('/api/batches', errorHandler({ retryAfterSeconds: opts.retryAfterSeconds }));

  return router;
}

module.exports = { createBatchRouter, PUBLIC_DIR };
