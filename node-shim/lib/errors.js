'use strict';

/**
 * Typed errors of the pyworker Node client.
 *
 * Every error thrown or rejected by this package is a `PyworkerError`
 * (except `TypeError` for a wrong argument type, e.g. an image that is not a
 * Buffer). Each has a string `.code`; branch on `.code` or `instanceof`, never
 * on the message, which is for people.
 *
 * @module pyworker/errors
 */

const contract = require('./contract.json');

/**
 * Every error code, with whose fault it is (`caller`: the request; `service`:
 * the worker or the pool), its HTTP status and its origin (`worker`: on the
 * wire; `client`: raised by this package). Generated from pyworker/errors.py.
 * @type {Readonly<Record<string, {fault: 'caller'|'service', http: number, origin: 'worker'|'client'}>>}
 */
const ERROR_CODES = Object.freeze(/** @type {Record<string, {fault: 'caller'|'service', http: number, origin: 'worker'|'client'}>} */ (contract.errors));
/** @param {'worker'|'client'} origin */
const codesFrom = (origin) => Object.freeze(Object.keys(ERROR_CODES).filter((c) => ERROR_CODES[c].origin === origin));

/** The worker's exit codes by name (docs/protocol.md#exit-codes): ok 0, usage 2, retired 75, config 78. */
const EXIT = Object.freeze(/** @type {Record<'ok'|'usage'|'retired'|'config', number>} */ (contract.exits));

/** Error codes of the protocol (docs/protocol.md#errors). */
const PROTOCOL_CODES = codesFrom('worker');

/** Codes that this client adds, for failures of the worker process or the pool. */
const CLIENT_CODES = codesFrom('client');

/**
 * Codes that mean the caller's own request was wrong (fault `caller` in the
 * table: the image or the options). `fallback: 'original'` never applies to
 * them: serving the original photo would hide the mistake on every request.
 * Every `service` failure (crash, timeout, queue full, model_unavailable,
 * start failure, internal) may fall back.
 */
const CALLER_CODES = Object.freeze(Object.keys(ERROR_CODES).filter((c) => ERROR_CODES[c].fault === 'caller'));

class PyworkerError extends Error {
  /**
   * @param {string} message
   * @param {{code?: string, cause?: unknown}} [opts]
   */
  constructor(message, opts = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    /** @type {string} */
    this.code = opts.code || 'pyworker_error';
  }
}

/**
 * An error reported by a worker, or about one.
 *
 * - `.code` is one of the protocol's codes (`invalid_image`, `bad_request`,
 *   `model_unavailable`, ...) when the worker answered with an error reply
 *   (or when this client's validation caught the same mistake before sending:
 *   `bad_request`, `input_too_large`);
 * - or `worker_crashed` / `protocol_error` / `start_failed` when the worker
 *   process failed (`.retriable` is true for the first two: the job had no
 *   effect and was, or could be, sent to another worker).
 */
class WorkerError extends PyworkerError {
  /**
   * @param {string} message
   * @param {{code?: string, workerPid?: number|null, retriable?: boolean,
   *   exitCode?: number|null, signal?: string|null, attempts?: number, cause?: unknown}} [opts]
   */
  constructor(message, opts = {}) {
    super(message, { code: opts.code || 'internal', cause: opts.cause });
    /** @type {number|null} pid of the worker concerned, null if none was. */
    this.workerPid = opts.workerPid ?? null;
    /** @type {boolean} true when the job never ran to completion on a worker and may be sent again. */
    this.retriable = Boolean(opts.retriable);
    /** @type {number|null|undefined} the worker's exit code, when it died */
    this.exitCode = opts.exitCode;
    /** @type {string|null|undefined} the signal that killed it */
    this.signal = opts.signal;
    /** @type {number|undefined} how many workers the job was sent to */
    this.attempts = opts.attempts;
  }
}

/** A job ran longer than `jobTimeoutMs` on a worker; that worker was killed. */
class TimeoutError extends PyworkerError {
  /**
   * @param {string} message
   * @param {{timeoutMs: number, workerPid?: number|null}} opts
   */
  constructor(message, opts) {
    super(message, { code: 'job_timeout' });
    this.timeoutMs = opts.timeoutMs;
    this.workerPid = opts.workerPid ?? null;
  }
}

/** The queue already holds `maxQueue` jobs waiting for a worker. */
class QueueFullError extends PyworkerError {
  /**
   * @param {string} message
   * @param {{maxQueue: number, maxQueueBytes?: number}} opts
   */
  constructor(message, opts) {
    super(message, { code: 'queue_full' });
    this.maxQueue = opts.maxQueue;
    /** Set when the bytes, not the count, were the limit. */
    this.maxQueueBytes = opts.maxQueueBytes ?? null;
  }
}

/** The pool is closing or closed; it takes no new jobs. */
class PoolClosedError extends PyworkerError {
  /** @param {string} [message] */
  constructor(message = 'the pool is closed; create a new pool (or do not call close() before the last request)') {
    super(message, { code: 'pool_closed' });
  }
}

/**
 * The job's `signal` was aborted. Like the DOM's AbortError its `name` is
 * 'AbortError'; `.cause` is the signal's reason.
 */
class AbortError extends PyworkerError {
  /** @param {unknown} [reason] */
  constructor(reason) {
    super('the request was aborted', { code: 'ABORT_ERR', cause: reason });
  }
}

/**
 * True for an error about the caller's own request (see CALLER_CODES).
 * @param {unknown} err
 */
function isCallerError(err) {
  return err instanceof WorkerError && CALLER_CODES.includes(err.code);
}

module.exports = {
  EXIT,
  ERROR_CODES,
  PROTOCOL_CODES,
  CLIENT_CODES,
  CALLER_CODES,
  isCallerError,
  PyworkerError,
  WorkerError,
  TimeoutError,
  QueueFullError,
  PoolClosedError,
  AbortError,
};
