'use strict';

/**
 * The Express router a host app mounts in one line:
 *
 *   app.use('/api', createRouter());
 *
 *   POST <mount>/remove-background  multipart/form-data, file field "image";
 *        text fields: the request options (maxSize, format, bgColor, trim, ...)
 *        -> 200 with the image, or 4xx/5xx {"error": {"code", "message"}}
 *   GET  <mount>/health             pool counters and worker memory from /proc
 *
 * It uses the process-wide default pool (configured from PYWORKER_* variables,
 * closed by `shutdown()` of pyworker-cutout) unless given a pool of its own.
 * express and multer are the host app's (optional peer dependencies).
 *
 * @module pyworker-cutout/express/router
 */

const { getDefaultPool } = require('../default-pool');
const { requirePeer } = require('../optional');
const { HttpError, errorHandler } = require('./http-errors');
const { optionsFromFields } = require('./fields');
const { formParser } = require('./form');
const { health } = require('./health');

const MiB = 1024 * 1024;
const ACCEPTED_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp', 'image/bmp']);

/**
 * @param {object} [opts]
 * @param {import('../pool').Pool} [opts.pool] default: the default pool (PYWORKER_* variables), created now so that
 *   a missing interpreter or package fails at mount time
 * @param {number} [opts.maxUploadBytes] default 10 MiB
 * @param {number} [opts.criticalMb] /health CRITICAL above this RSS per worker (default the pool's memoryLimitMb, else 1024)
 * @param {number} [opts.warnMb] /health WARNING above this (default 80 % of criticalMb)
 * @param {number} [opts.retryAfterSeconds] Retry-After of a 503 (default 2)
 * @param {number} [opts.maxTotalUploadBytes] request bytes being received or held at once, all requests together;
 *   beyond it, 503 + Retry-After without buffering the body (default 64 MiB: a 512 MB host's share)
 * @param {number} [opts.timeoutMs] a job taking longer answers 504; its worker is SIGKILLed and replaced
 *   (default: the pool's jobTimeoutMs)
 */
function createRouter(opts = {}) {
  const express = requirePeer('express', 'pyworker-cutout/express (createRouter)');
  const { maxUploadBytes = 10 * MiB, retryAfterSeconds = 2, maxTotalUploadBytes = 64 * MiB } = opts;
  const parseForm = formParser({ field: 'image', limits: { fileSize: maxUploadBytes, files: 1, fields: 20, fieldSize: 64 * 1024 } });
  const pool = opts.pool ?? getDefaultPool();
  const budget = uploadBudget(maxUploadBytes, maxTotalUploadBytes);
  const timeoutMs = opts.timeoutMs ?? pool.options.jobTimeoutMs;
  const criticalMb = opts.criticalMb ?? pool.options.memoryLimitMb ?? 1024;
  const thresholds = { criticalMb, warnMb: opts.warnMb ?? Math.round(criticalMb * 0.8) };

  const router = express.Router();

  router.post('/remove-background', budget, parseForm, async (/** @type {any} */ req, /** @type {any} */ res, /** @type {any} */ next) => {
    if (!req.file) return next(new HttpError(400, 'bad_request', 'send the photo as multipart/form-data in the field "image"'));
    // A client that goes away before the answer aborts its job: a queued one leaves the queue, a running
    // one's worker is killed and replaced (docs/reliability.md#a-client-that-hangs-up), so it serves the next request.
    const aborter = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) aborter.abort();
    });
    try {
      const result = await pool.removeWithMeta(req.file.buffer, { ...optionsFromFields(req.body), signal: aborter.signal, timeoutMs });
      res.set({ 'Content-Type': result.mime, 'Cache-Control': 'no-store' });
      if (result.fallback) {
        // 200 with the original: the page shows the photo; the header says why it is not cut out.
        res.set({ 'X-Pyworker-Fallback': String(result.error?.code || 'error') });
      } else {
        res.set({ 'X-Worker-Pid': String(result.workerPid), 'X-Processing-Ms': String(Math.round(result.meta.timingsMs.total)) });
      }
      res.send(result.image);
    } catch (err) {
      if (aborter.signal.aborted) return; // nobody is listening any more
      next(err);
    }
  });

  router.get('/health', (/** @type {any} */ req, /** @type {any} */ res) => {
    const { httpStatus, ...body } = health(pool, thresholds);
    res.status(httpStatus).json(body);
  });

  // Errors of these routes only: JSON with the code and the worker's message.
  router.use(errorHandler({ retryAfterSeconds }));

  return router;
}

/**
 * Refuse a request without buffering its body: read it and throw it away (at most `cap` bytes), then
 * answer `err` with `Connection: close`. Answering while the client still sends would close a socket
 * with unread bytes: the kernel resets it, and the client sees ECONNRESET/EPIPE instead of the status.
 * A body beyond `cap` is cut off (the socket destroyed): past it, the reset is the client's doing.
 * @param {any} req @param {any} res @param {(err: unknown) => void} next @param {HttpError} err @param {number} cap
 */
function refuseAfterBody(req, res, next, err, cap) {
  res.set('Connection', 'close');
  let seen = 0;
  req.on('data', (/** @type {Buffer} */ chunk) => {
    seen += chunk.length;
    if (seen > cap) req.socket.destroy();
  });
  req.once('end', () => next(err));
  req.once('error', () => {}); // a client that gave up: nobody to answer
  req.resume();
}

/**
 * Admission by bytes, before a body is read: each request reserves its Content-Length (or the upload
 * limit when it has none) out of `totalBytes`, returned when its response is done. Beyond it the
 * request is shed with 503 + Retry-After, so 50 uploads of 10 MiB are never all held in memory.
 * @param {number} maxUploadBytes @param {number} totalBytes
 */
function uploadBudget(maxUploadBytes, totalBytes) {
  const slack = 64 * 1024; // multipart headers and the text fields around the file
  const cap = maxUploadBytes + slack;
  let held = 0;
  return (/** @type {any} */ req, /** @type {any} */ res, /** @type {any} */ next) => {
    const declared = Number(req.headers['content-length']);
    const cost = Number.isFinite(declared) && declared >= 0 ? declared : cap;
    if (cost > cap) {
      // Answered at once: reading a body declared too large to the end is what the limit is there to avoid.
      res.set('Connection', 'close');
      return next(new HttpError(413, 'input_too_large', `Request size (${(cost / MiB).toFixed(1)}MB) exceeds maximum (${(maxUploadBytes / MiB).toFixed(1)}MB)`));
    }
    if (held > 0 && held + cost > totalBytes) {
      const err = new HttpError(503, 'queue_full', `uploads in progress hold ${(held / MiB).toFixed(1)}MB (maxTotalUploadBytes ${(totalBytes / MiB).toFixed(0)}MB); retry later`);
      return refuseAfterBody(req, res, next, err, cap);
    }
    held += cost;
    let done = false;
    const release = () => {
      if (!done) {
        done = true;
        held -= cost;
      }
    };
    res.once('finish', release);
    res.once('close', release);
    next();
  };
}

module.exports = { createRouter, uploadBudget, refuseAfterBody, ACCEPTED_TYPES };
