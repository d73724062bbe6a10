'use strict';

/**
 * HTTP status and JSON body for each error the routers can meet: the pool's
 * typed errors (by code, docs/protocol.md#errors), multer's, and the routers' own;
 * and the one error middleware both routers end with.
 *
 * @module pyworker-cutout/express/http-errors
 */

const { ERROR_CODES, WorkerError, TimeoutError, QueueFullError, PoolClosedError } = require('../errors');

/** HTTP status for each error code (declared with the code in pyworker/errors.py, via contract.json). */
const STATUS_BY_CODE = Object.freeze(Object.fromEntries(Object.entries(ERROR_CODES).map(([code, e]) => [code, e.http])));

/** An error of the router itself (e.g. no file in the form), with its status and code. */
class HttpError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
  }
}

/**
 * Status code, error code, message and extra headers for an error.
 * @param {unknown} err
 * @param {{retryAfterSeconds?: number}} [opts]
 * @returns {{status: number, code: string, message: string, headers?: Record<string, string>}}
 */
function errorResponse(err, { retryAfterSeconds = 2 } = {}) {
  const retry = { 'Retry-After': String(retryAfterSeconds) };
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message, ...(err.status === 503 ? { headers: retry } : {}) };
  // multer's errors, without requiring multer here (it is an optional peer dependency).
  if (err instanceof Error && err.name === 'MulterError') {
    const e = /** @type {Error & {code: string, field?: string}} */ (err);
    if (e.code === 'LIMIT_FILE_SIZE') return { status: 413, code: 'input_too_large', message: e.message };
    return { status: 400, code: 'bad_request', message: `${e.message}${e.field ? ` (field ${e.field})` : ''}` };
  }
  if (err instanceof QueueFullError) return { status: 503, code: err.code, message: err.message, headers: retry };
  if (err instanceof PoolClosedError) {
    return { status: 503, code: err.code, message: 'the server is shutting down; retry on another instance', headers: retry };
  }
  if (err instanceof TimeoutError) return { status: 504, code: err.code, message: err.message };
  if (err instanceof WorkerError) {
    const status = /** @type {Record<string, number>} */ (STATUS_BY_CODE)[err.code] || 500;
    return { status, code: err.code, message: err.message, ...(status === 503 ? { headers: retry } : {}) };
  }
  return { status: 500, code: 'internal', message: 'internal error' };
}

/**
 * The error middleware of both routers: JSON {error: {code, message}}, Retry-After on every 503, the stack
 * of an unexpected failure (5xx but 503) logged, the message of an unknown error never shown.
 * @param {{retryAfterSeconds?: number}} [opts]
 */
function errorHandler({ retryAfterSeconds = 2 } = {}) {
  return (/** @type {unknown} */ err, /** @type {any} */ req, /** @type {any} */ res, /** @type {(err?: unknown) => void} */ next) => {
    if (res.headersSent) return next(err);
    const r = errorResponse(err, { retryAfterSeconds });
    if (r.status >= 500 && r.status !== 503) console.error(`[pyworker] ${req.method} ${req.originalUrl}: ${err instanceof Error ? err.stack : String(err)}`);
    if (r.headers) res.set(r.headers);
    res.status(r.status).json({ error: { code: r.code, message: r.message } });
  };
}

module.exports = { STATUS_BY_CODE, HttpError, errorResponse, errorHandler };
