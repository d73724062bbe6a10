'use strict';

/**
 * The front every remover shares (the Pool, the QueueClient): what a request must be before it is
 * taken, when `fallback: 'original'` applies and what it resolves with, and one 'abort' listener per
 * AbortSignal. Written once, so the two removers cannot disagree on them.
 *
 * @module pyworker-cutout/front
 */

const { parseRequestOptions } = require('./request-options');
const { WorkerError, TimeoutError, QueueFullError, isCallerError } = require('./errors');
const { sniffMime } = require('./mime');
const { onAbort } = require('./abort');

/**
 * A request as a remover takes it: the image as a Buffer (a view, not a copy) and the parsed options.
 * Throws a TypeError for an image that is not bytes, and bad_request for a bad option, before anything is
 * queued.
 * @param {unknown} image
 * @param {Record<string, any>|undefined} options
 * @param {Record<string, unknown>|null} [limits] a worker's `ready` limits, when one has said them
 * @returns {{buf: Buffer, parsed: ReturnType<typeof parseRequestOptions>}}
 */
function takeRequest(image, options, limits) {
  if (!(image instanceof Uint8Array)) {
    throw new TypeError(`image must be a Buffer or Uint8Array, got ${image === null ? 'null' : typeof image}`);
  }
  const parsed = parseRequestOptions(options, limits || undefined);
  const buf = Buffer.isBuffer(image) ? image : Buffer.from(image.buffer, image.byteOffset, image.byteLength);
  return { buf, parsed };
}

/**
 * True when `fallback: 'original'` covers the error: the service's failures only (a worker that crashed,
 * timed out, a full queue); the caller's own mistakes (errors.CALLER_CODES: invalid_image, bad_request…)
 * always reject, and so do an abort and a closed remover.
 * @param {unknown} err
 */
function fallbackApplies(err) {
  if (isCallerError(err)) return false;
  return err instanceof WorkerError || err instanceof TimeoutError || err instanceof QueueFullError;
}

/**
 * What a request falls back to: its own input, marked (see fallback.js) and carrying the error.
 * @param {Buffer} image @param {Error} error
 */
function fallbackResult(image, error) {
  return { image, mime: sniffMime(image), meta: null, stats: null, workerPid: null, attempts: 0, fallback: /** @type {const} */ (true), error };
}

/**
 * Settle a failed request: with the fallback result when `mode` is 'original', the input is still held and
 * the error is the service's (then `onFallback(err)` first); otherwise reject with the error.
 * @param {'throw'|'original'|undefined} mode
 * @param {Buffer|null} input
 * @param {Error} err
 * @param {{resolve: (v: any) => void, reject: (e: Error) => void}} settle
 * @param {(err: Error) => void} [onFallback]
 */
function settleFailure(mode, input, err, { resolve, reject }, onFallback) {
  if (mode === 'original' && input && fallbackApplies(err)) {
    if (onFallback) onFallback(err);
    resolve(fallbackResult(input, err));
  } else {
    reject(err);
  }
}

/**
 * A request refused at the door, as a promise: settleFailure's outcome.
 * @param {'throw'|'original'|undefined} mode @param {Buffer} input @param {Error} err
 * @param {(err: Error) => void} [onFallback]
 * @returns {Promise<any>}
 */
function refuse(mode, input, err, onFallback) {
  return new Promise((resolve, reject) => settleFailure(mode, input, err, { resolve, reject }, onFallback));
}

module.exports = { takeRequest, fallbackApplies, fallbackResult, settleFailure, refuse, onAbort };
