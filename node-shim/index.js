'use strict';

/**
 * pyworker for Node.js: a pool of long-lived Python background-removal
 * workers driven over stdin/stdout (docs/protocol.md).
 *
 * @example
 * const { createPool } = require('pyworker-cutout');
 * const pool = createPool({ size: 2, memoryLimitMb: 600 });
 * const png = await pool.remove(jpegBuffer, { maxSize: 800 });
 * await pool.close();
 *
 * @module pyworker-cutout
 */

const { Pool, createPool } = require('./lib/pool');
const errors = require('./lib/errors');
const defaults = require('./lib/default-pool');
const { encodeFrame, encodeFrameBuffer, FrameDecoder, FrameError } = require('./lib/framing');
const { parseRequestOptions, KNOWN_OPTIONS } = require('./lib/request-options');
const { poolOptionsFromEnv, normalizePoolOptions, ENV_VARS } = require('./lib/settings');
const { sniffMime } = require('./lib/mime');
const { isFallback } = require('./lib/fallback');

/**
 * A producer on a BullMQ queue in Redis, with the pool's shape (remove,
 * removeWithMeta, removeBatch, close). Loaded on first use, so the pool alone
 * never loads bullmq.
 * @param {Parameters<typeof import('./lib/queue/client').createQueueClient>[0]} opts
 */
function createQueueClient(opts) {
  return require('./lib/queue/client').createQueueClient(opts);
}

/**
 * A consumer: takes jobs from the queue and runs them on a local pool
 * (what `pyworker-queue-worker` runs). Loaded on first use.
 * @param {Parameters<typeof import('./lib/queue/consumer').createQueueConsumer>[0]} opts
 */
function createQueueConsumer(opts) {
  return require('./lib/queue/consumer').createQueueConsumer(opts);
}

/**
 * Express routes for batches (POST /api/batches, its events, results.zip)
 * and the page at GET /, on a Pool or a QueueClient. Needs express and multer.
 * @param {Parameters<typeof import('./lib/express/batch-router').createBatchRouter>[0]} opts
 */
function createBatchRouter(opts) {
  return require('./lib/express/batch-router').createBatchRouter(opts);
}

module.exports = {
  createPool,
  createQueueClient,
  createQueueConsumer,
  createBatchRouter,
  Pool,
  removeBackgroundBuffer: defaults.removeBackgroundBuffer,
  removeBackgroundBufferWithMeta: defaults.removeBackgroundBufferWithMeta,
  shutdown: defaults.shutdown,
  configure: defaults.configure,
  getDefaultPool: defaults.getDefaultPool,
  isFallback,
  // errors
  PyworkerError: errors.PyworkerError,
  WorkerError: errors.WorkerError,
  TimeoutError: errors.TimeoutError,
  QueueFullError: errors.QueueFullError,
  PoolClosedError: errors.PoolClosedError,
  AbortError: errors.AbortError,
  PROTOCOL_CODES: errors.PROTOCOL_CODES,
  ERROR_CODES: errors.ERROR_CODES,
  // lower level, for tests and other clients
  encodeFrame,
  encodeFrameBuffer,
  FrameDecoder,
  FrameError,
  parseRequestOptions,
  normalizePoolOptions,
  poolOptionsFromEnv,
  KNOWN_OPTIONS,
  ENV_VARS,
  sniffMime,
};
