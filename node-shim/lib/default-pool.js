'use strict';

/**
 * The process-wide default pool behind `removeBackgroundBuffer()`: created on
 * first use from PYWORKER_* environment variables, closed by `shutdown()`.
 *
 * It is created with `unref: true`: while it has no work it does not keep
 * Node running, so a script that forgets `shutdown()` still exits (its idle
 * workers see end-of-file on stdin and exit too).
 *
 * @module pyworker/default-pool
 */

const { createPool } = require('./pool');
const { poolOptionsFromEnv } = require('./settings');

/** @type {import('./pool').Pool|null} */
let defaultPool = null;
/** @type {Record<string, unknown>} */
let overrides = {};

/**
 * Options of the default pool: the environment, then `configure()`'s overrides.
 * @returns {Record<string, unknown>}
 */
function defaultPoolOptions() {
  return { unref: true, ...poolOptionsFromEnv(process.env), ...overrides };
}

/**
 * Set options of the default pool before its first use (they win over the
 * environment). Throws if the default pool already exists: call `shutdown()`
 * first.
 * @param {Record<string, unknown>} options
 */
function configure(options) {
  if (defaultPool) throw new Error('the default pool is already running; call shutdown() before configure()');
  overrides = { ...options };
}

/** The default pool, created on first call. */
function getDefaultPool() {
  if (!defaultPool) defaultPool = createPool(defaultPoolOptions());
  return defaultPool;
}

/**
 * Remove the background of one image with the default pool.
 * @param {Buffer|Uint8Array} image
 * @param {Record<string, any>} [options]
 * @returns {Promise<Buffer>}
 */
function removeBackgroundBuffer(image, options) {
  let pool;
  try {
    pool = getDefaultPool();
  } catch (err) {
    return Promise.reject(err);
  }
  return pool.remove(image, options);
}

/**
 * Like removeBackgroundBuffer(), with the reply's meta, stats and worker pid.
 * @param {Buffer|Uint8Array} image
 * @param {Record<string, any>} [options]
 */
function removeBackgroundBufferWithMeta(image, options) {
  let pool;
  try {
    pool = getDefaultPool();
  } catch (err) {
    return Promise.reject(err);
  }
  return pool.removeWithMeta(image, options);
}

/**
 * Close the default pool (draining it, or at once with `{force: true}`). The
 * next `removeBackgroundBuffer()` creates a new one.
 * @param {{force?: boolean}} [opts]
 * @returns {Promise<void>}
 */
async function shutdown(opts) {
  const pool = defaultPool;
  defaultPool = null;
  if (pool) await pool.close(opts);
}

module.exports = {
  getDefaultPool,
  defaultPoolOptions,
  configure,
  removeBackgroundBuffer,
  removeBackgroundBufferWithMeta,
  shutdown,
};
