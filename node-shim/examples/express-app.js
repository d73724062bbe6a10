'use strict';

/**
 * Express template: background removal over HTTP with a pyworker pool.
 *
 *   POST /api/remove-background   multipart/form-data, file field "image"
 *        optional text fields: maxSize, format, bgColor, trim, padding, refine,
 *        onlyMask, crop, preset, faceRequired, model
 *        -> 200 with the image (Content-Type image/png, image/webp or image/jpeg)
 *        -> 4xx/5xx with {"error": {"code", "message"}}
 *   GET  /health                  pool and worker memory, status OK / WARNING / CRITICAL
 *   POST /api/batches, GET /api/batches/:id/events, GET /api/batches/:id/results.zip
 *                                 batches with progress (lib/batch-router.js)
 *   GET  /                        the page: drop photos, watch them finish, download the zip
 *
 * Copy this file into your backend. Run it alone with
 *   PORT=3000 node examples/express-app.js
 * (pool settings come from PYWORKER_* variables, see the README; with
 * PYWORKER_REDIS_URL and PYWORKER_QUEUE set, batches go to that queue's
 * consumers instead of the local pool).
 * Needs: npm install express multer
 */

const express = require('express');
const multer = require('multer');
const {
  createPool,
  createQueueClient,
  createBatchRouter,
  poolOptionsFromEnv,
  WorkerError,
  TimeoutError,
  QueueFullError,
  PoolClosedError,
  ERROR_CODES,
} = require('pyworker');

const MiB = 1024 * 1024;
const ACCEPTED_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp', 'image/bmp']);

/** HTTP status for each error code (declared with the code in pyworker/errors.py). */
const STATUS_BY_CODE = Object.fromEntries(Object.entries(ERROR_CODES).map(([code, e]) => [code, e.http]));

/** Per-request options accepted as multipart text fields, and how to parse them. */
const FIELD_PARSERS = {
  maxSize: 'int',
  padding: 'int',
  trim: 'bool',
  refine: 'bool',
  onlyMask: 'bool',
  faceRequired: 'bool',
  format: 'string',
  bgColor: 'string',
  crop: 'string',
  preset: 'string',
  model: 'string',
};

class HttpError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Turn the multipart text fields into pool options; the pool validates the values. */
function optionsFromFields(body = {}) {
  const options = {};
  for (const [name, kind] of Object.entries(FIELD_PARSERS)) {
    const raw = body[name];
    if (raw === undefined || raw === '') continue;
    if (typeof raw !== 'string') throw new HttpError(400, 'bad_request', `field ${name} must be given once`);
    if (kind === 'int') {
      if (!/^\d+$/.test(raw)) throw new HttpError(400, 'bad_request', `field ${name} must be an integer >= 0, got "${raw}"`);
      options[name] = Number(raw);
    } else if (kind === 'bool') {
      if (!/^(true|false|1|0)$/i.test(raw)) throw new HttpError(400, 'bad_request', `field ${name} must be true or false, got "${raw}"`);
      options[name] = /^(true|1)$/i.test(raw);
    } else {
      options[name] = raw;
    }
  }
  return options;
}

/** Status code and JSON body for an error thrown by the pool (or by this app). */
function errorResponse(err, { retryAfterSeconds = 2 } = {}) {
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message };
  if (err instanceof multer.MulterError) {
    if (err.code === 'LIMIT_FILE_SIZE') return { status: 413, code: 'input_too_large', message: err.message };
    return { status: 400, code: 'bad_request', message: `${err.message}${err.field ? ` (field ${err.field})` : ''}` };
  }
  if (err instanceof QueueFullError) {
    return { status: 503, code: err.code, message: err.message, headers: { 'Retry-After': String(retryAfterSeconds) } };
  }
  if (err instanceof PoolClosedError) {
    return { status: 503, code: err.code, message: 'the server is shutting down; retry on another instance', headers: { 'Retry-After': String(retryAfterSeconds) } };
  }
  if (err instanceof TimeoutError) return { status: 504, code: err.code, message: err.message };
  if (err instanceof WorkerError) return { status: STATUS_BY_CODE[err.code] || 500, code: err.code, message: err.message };
  return { status: 500, code: 'internal', message: 'internal error' };
}

/**
 * Health from the workers' last reported RSS.
 * WARNING when a worker is above warnMb or the queue is 3/4 full,
 * CRITICAL when a worker is above criticalMb or no worker is up.
 */
function health(pool, { warnMb, criticalMb }) {
  const s = pool.stats();
  const maxRss = Math.max(0, ...s.workers.map((w) => w.rssMb || 0));
  let status = 'OK';
  const reasons = [];
  if (maxRss >= warnMb) reasons.push(`a worker uses ${maxRss} MB (warning at ${warnMb} MB)`);
  if (Number.isFinite(s.maxQueue) && s.maxQueue > 0 && s.queued >= 0.75 * s.maxQueue) reasons.push(`queue ${s.queued}/${s.maxQueue}`);
  if (reasons.length) status = 'WARNING';
  if (maxRss >= criticalMb) {
    status = 'CRITICAL';
    reasons.push(`a worker uses ${maxRss} MB (critical at ${criticalMb} MB)`);
  }
  if (!s.ready) {
    status = 'CRITICAL';
    reasons.push(s.lastStartError ? `no worker is up: ${s.lastStartError.message}` : 'no worker is up');
  }
  return {
    status,
    reasons,
    thresholds: { warnMb, criticalMb },
    pool: {
      size: s.size,
      queued: s.queued,
      running: s.running,
      maxQueue: Number.isFinite(s.maxQueue) ? s.maxQueue : null,
      completed: s.completed,
      failed: s.failed,
      recycled: s.recycled,
      totalRssMb: s.totalRssMb,
    },
    workers: s.workers.map((w) => ({ pid: w.pid, state: w.state, rssMb: w.rssMb, peakRssMb: w.peakRssMb, jobs: w.jobs })),
  };
}

/**
 * Build the Express app around a pool (the caller owns the pool and closes it).
 *
 * @param {object} opts
 * @param {import('pyworker').Pool} opts.pool
 * @param {number} [opts.maxUploadBytes] default 10 MiB
 * @param {number} [opts.warnMb] health WARNING threshold for a worker's RSS (default 80% of criticalMb)
 * @param {number} [opts.criticalMb] health CRITICAL threshold (default the pool's memoryLimitMb, else 1024)
 * @param {number} [opts.retryAfterSeconds] Retry-After of a 503 (default 2)
 * @param {{removeWithMeta: Function}} [opts.batchRemover] where batches run: a QueueClient (default: the pool)
 */
function createApp({ pool, maxUploadBytes = 10 * MiB, criticalMb, warnMb, retryAfterSeconds = 2, batchRemover }) {
  if (!pool) throw new TypeError('createApp needs {pool}');
  const critical = criticalMb ?? pool.options.memoryLimitMb ?? 1024;
  const thresholds = { criticalMb: critical, warnMb: warnMb ?? Math.round(critical * 0.8) };

  const upload = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: maxUploadBytes, files: 1, fields: 20 },
    fileFilter(req, file, cb) {
      if (ACCEPTED_TYPES.has(file.mimetype)) return cb(null, true);
      cb(new HttpError(415, 'unsupported_format', `unsupported file type ${file.mimetype}; send JPEG, PNG, WEBP or BMP`));
    },
  });

  const app = express();
  app.disable('x-powered-by');

  app.post('/api/remove-background', upload.single('image'), async (req, res, next) => {
    if (!req.file) return next(new HttpError(400, 'bad_request', 'send the photo as multipart/form-data in the field "image"'));
    // Stop the job if the client goes away before the answer.
    const aborter = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) aborter.abort();
    });
    try {
      const options = { ...optionsFromFields(req.body), signal: aborter.signal };
      const result = await pool.removeWithMeta(req.file.buffer, options);
      res.set({
        'Content-Type': result.mime,
        'X-Worker-Pid': String(result.workerPid),
        'X-Processing-Ms': String(Math.round(result.meta.timingsMs.total)),
        'Cache-Control': 'no-store',
      });
      res.send(result.image);
    } catch (err) {
      if (aborter.signal.aborted) return; // nobody is listening any more
      next(err);
    }
  });

  // Batches with progress, and the page at GET /.
  app.use(createBatchRouter({ remover: batchRemover || pool }));

  app.get('/health', (req, res) => {
    const h = health(pool, thresholds);
    res.status(h.status === 'CRITICAL' ? 503 : 200).json(h);
  });

  // Errors: JSON with the worker's code and message.
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    const r = errorResponse(err, { retryAfterSeconds });
    if (r.status >= 500 && r.status !== 503) console.error(`[pyworker] ${req.method} ${req.path}: ${err && err.stack}`);
    if (r.headers) res.set(r.headers);
    res.status(r.status).json({ error: { code: r.code, message: r.message } });
  });

  return app;
}

/** Run standalone: pool from PYWORKER_* variables, graceful shutdown on SIGTERM/SIGINT. */
async function main() {
  const port = Number(process.env.PORT || 3000);
  const host = process.env.HOST || '127.0.0.1';
  const pool = createPool(poolOptionsFromEnv());
  pool.on('error', (err) => console.error(`[pyworker] ${err.message}`));
  pool.on('recycle', (e) => console.error(`[pyworker] worker ${e.pid} recycled (${e.reason})`));
  const queue = process.env.PYWORKER_REDIS_URL && process.env.PYWORKER_QUEUE ? createQueueClient({ redis: process.env.PYWORKER_REDIS_URL, queue: process.env.PYWORKER_QUEUE }) : null;
  const app = createApp({ pool, maxUploadBytes: Number(process.env.MAX_UPLOAD_MB || 10) * MiB, batchRemover: queue || undefined });
  await pool.ready();
  const server = app.listen(port, host, () => console.log(`listening on http://${host}:${port}`));

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: draining`);
    const hardStop = setTimeout(() => {
      console.error('drain took too long; exiting');
      pool.close({ force: true }).finally(() => process.exit(1));
    }, Number(process.env.SHUTDOWN_TIMEOUT_MS || 30_000));
    hardStop.unref();
    // Stop accepting; requests in progress finish (and their jobs with them).
    await new Promise((resolve) => server.close(resolve));
    if (queue) await queue.close();
    await pool.close();
    console.log('stopped');
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

module.exports = { createApp, errorResponse, optionsFromFields, health, STATUS_BY_CODE };
