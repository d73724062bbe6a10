'use strict';

/**
 * The fallback mark (`fallback: 'original'`): how a result that is the caller's own input says so.
 * Written once here for every remover (the pool, the queue client) and read by `isFallback`.
 *
 * @module pyworker-cutout/fallback
 */

/** Non-enumerable property of a fallback Buffer: the error it stands in for. */
const MARK = 'pyworkerFallback';

/**
 * True when a result of `remove()` / `removeBackgroundBuffer()` is the
 * caller's own input returned because of `fallback: 'original'`.
 * @param {unknown} result
 * @returns {boolean}
 */
function isFallback(result) {
  if (result === null || typeof result !== 'object') return false;
  if (Buffer.isBuffer(result)) return MARK in result;
  return 'fallback' in result && result.fallback === true;
}

/**
 * What `remove()` resolves with, from a `removeWithMeta()` result: the image, and for a fallback a Buffer
 * view of the input (not a copy) carrying the error under MARK.
 * @param {{image: Buffer|Uint8Array, fallback?: boolean, error?: unknown}} result
 * @returns {Buffer}
 */
function resultBuffer(result) {
  if (!result.fallback) return /** @type {Buffer} */ (result.image);
  const buf = Buffer.from(result.image.buffer, result.image.byteOffset, result.image.byteLength);
  Object.defineProperty(buf, MARK, { value: result.error, enumerable: false });
  return buf;
}

module.exports = { MARK, isFallback, resultBuffer };
