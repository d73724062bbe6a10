'use strict';

/**
 * The queue's settings, each declared once with its reason, and what is
 * derived from them: Redis key names, the error codec shared by producer and
 * consumer, the redis:// connection.
 *
 * @module pyworker/queue/settings
 */

const { requireFromPeer } = require('../optional');
const { WorkerError, TimeoutError, QueueFullError, PoolClosedError, AbortError, PyworkerError } = require('../errors');

const MiB = 1024 * 1024;

/** Defaults of the producer (createQueueClient) and the consumer (createQueueConsumer). */
const DEFAULTS = Object.freeze({
  // Results (and the inputs of unfinished jobs) stay in Redis this long.
  resultTtlMs: 60 * 60 * 1000,
  // Runs of a job that failed for a reason that may pass (a worker crashed twice
  // in the consumer's pool, a worker would not start); input errors are final at once.
  attempts: 3,
  // First wait before another run (doubles each time).
  backoffMs: 1000,
  // A consumer holds a lock on each job it runs and renews it every
  // lockDurationMs / 2; a consumer that died (SIGKILL, machine gone) stops
  // renewing, and within lockDurationMs + stalledIntervalMs another consumer's
  // stalled-job check puts the job back in the queue. 10 s is far above the
  // time a renewal needs (the Node event loop never blocks on a job: the work
  // is in the Python workers) and keeps the recovery under 15 s.
  lockDurationMs: 10_000,
  stalledIntervalMs: 5_000,
  // A job whose consumer died once is run again; twice, it is poison (it is what
  // kills them) and fails with worker_crashed.
  maxStalledCount: 1,
  // From enqueue to result, as the caller sees it: the promise rejects with
  // TimeoutError after this (a job still waiting is removed). Not the pool's jobTimeoutMs (one run on a
  // worker, 30 s), hence its own name; `jobTimeoutMs` is still read as its old name (client.js).
  deadlineMs: 120_000,
  // Jobs in the queue and not yet finished (waiting or running), and their input
  // bytes; beyond either, remove() rejects at once with QueueFullError.
  maxQueuedJobs: 1000,
  maxQueuedBytes: 512 * MiB,
  // One input, the worker's own --max-input-mb default: a larger one is refused input_too_large here,
  // before it reaches Redis (a consumer would only refuse it after Redis, the consumer and the worker each
  // held it). Consumers started with a larger --max-input-mb need the same here.
  maxInputMb: 10,
  // close() waits this long for Redis (a consumer: after its jobs drained)
  // before dropping the connections: a Redis that is gone must not hang a shutdown.
  closeTimeoutMs: 5_000,
  // Key prefix of BullMQ's keys and ours.
  prefix: 'pyworker',
});

/**
 * Our own keys beside BullMQ's (which live under `${prefix}:${queue}:`).
 * Inputs and results are raw bytes (no base64 inflation in JSON job data).
 * @param {string} prefix @param {string} queue
 */
function keys(prefix, queue) {
  const base = `${prefix}:${queue}:px`;
  return {
    input: (/** @type {string} */ id) => `${base}:in:${id}`,
    result: (/** @type {string} */ id) => `${base}:out:${id}`,
    /** hash jobId -> input bytes, of jobs admitted and not finished */
    pending: `${base}:pending`,
    pendingBytes: `${base}:pending-bytes`,
  };
}

/** Admission (atomic check and reserve) and release, over our two accounting keys. */
const SCRIPTS = {
  pyworkerAdmit: {
    numberOfKeys: 2,
    // ARGV: jobId, bytes, maxJobs, maxBytes -> {0|1|2, jobs, bytes}
    lua: `
local jobs = redis.call('HLEN', KEYS[1])
local bytes = tonumber(redis.call('GET', KEYS[2]) or '0')
if jobs >= tonumber(ARGV[3]) then return {1, jobs, bytes} end
if bytes + tonumber(ARGV[2]) > tonumber(ARGV[4]) then return {2, jobs, bytes} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCRBY', KEYS[2], ARGV[2])
return {0, jobs + 1, bytes + tonumber(ARGV[2])}`,
  },
  pyworkerRelease: {
    numberOfKeys: 2,
    // ARGV: jobId. Idempotent: whoever sees the job's end first releases it.
    lua: `
local n = redis.call('HGET', KEYS[1], ARGV[1])
if not n then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DECRBY', KEYS[2], n)
return 1`,
  },
};

/**
 * ioredis options from a redis://[user:password@]HOST:PORT[/DB] URL (rediss:// for TLS), or options as given.
 * BullMQ makes (and closes) its own connections from these.
 * @param {string|Record<string, any>} redis
 * @returns {Record<string, any>}
 */
function connectionOptions(redis) {
  if (typeof redis !== 'string') return { ...redis };
  const u = new URL(redis);
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new TypeError(`redis must be a redis:// or rediss:// URL, got ${describeRedis(redis)}`);
  /** @type {Record<string, any>} */
  const o = { host: u.hostname || '127.0.0.1', port: Number(u.port || 6379) };
  if (u.username) o.username = decodeURIComponent(u.username);
  if (u.password) o.password = decodeURIComponent(u.password);
  const db = u.pathname.replace(/^\//, '');
  if (db) o.db = Number(db);
  if (u.protocol === 'rediss:') o.tls = {};
  return o;
}

/**
 * An ioredis connection from a redis:// URL (or options), with our scripts.
 * @param {string|Record<string, any>} redis
 * @param {{blocking?: boolean}} [opts] blocking: BullMQ workers and QueueEvents need maxRetriesPerRequest null
 * @returns {import('ioredis').Redis & Record<string, any>}
 */
function connect(redis, { blocking = false } = {}) {
  // bullmq's own ioredis (pyworker-cutout does not depend on ioredis itself), loaded with the first connection:
  // the settings alone (pyworker-queue-worker --help) need neither.
  const IORedis = requireFromPeer('ioredis', 'bullmq', 'The queue (createQueueClient, createQueueConsumer, pyworker-queue-worker)');
  const extra = blocking ? { maxRetriesPerRequest: null } : {};
  const conn = new IORedis({ ...connectionOptions(redis), ...extra });
  for (const [name, s] of Object.entries(SCRIPTS)) conn.defineCommand(name, s);
  // Errors are reported by the commands that fail; an unhandled 'error' event would crash the process.
  conn.on('error', () => {});
  return /** @type {any} */ (conn);
}

/** @param {string|Record<string, any>} redis */
function describeRedis(redis) {
  if (typeof redis === 'string') return redis.replace(/\/\/[^@/]*@/, '//***@');
  return `redis://${redis.host || '127.0.0.1'}:${redis.port || 6379}`;
}

/**
 * True once `promise` settles, false if `ms` pass first (the caller then cuts its connections).
 * @param {Promise<unknown>} promise @param {number} ms
 * @returns {Promise<boolean>}
 */
function within(promise, ms) {
  /** @type {NodeJS.Timeout|undefined} */
  let t;
  const timeout = new Promise((resolve) => {
    t = setTimeout(() => resolve(false), ms);
    t.unref();
  });
  const settled = promise.then(
    () => true,
    () => true,
  );
  return Promise.race([settled, timeout]).finally(() => clearTimeout(t));
}

const ERROR_MARK = 'pyworker-error:';

/**
 * A failure as a BullMQ failedReason (a string): the type and fields the
 * producer needs to rebuild the same typed error the pool would have thrown.
 * @param {any} err
 */
function encodeError(err) {
  /** @type {Record<string, unknown>} */
  const e = { type: err && err.name, code: err && err.code, message: String((err && err.message) || err) };
  if (err && err.timeoutMs !== undefined) e.timeoutMs = err.timeoutMs;
  if (err && err.workerPid !== undefined) e.workerPid = err.workerPid;
  if (err && err.retriable !== undefined) e.retriable = err.retriable;
  return ERROR_MARK + JSON.stringify(e);
}

/**
 * The typed error of a failed job, from its failedReason.
 * @param {string} reason
 * @param {{attempts?: number, jobId?: string}} [ctx]
 * @returns {PyworkerError}
 */
function decodeError(reason, ctx = {}) {
  /** @type {any} */
  let e = null;
  const s = String(reason || '');
  const at = s.indexOf(ERROR_MARK);
  if (at >= 0) {
    try {
      e = JSON.parse(s.slice(at + ERROR_MARK.length));
    } catch {
      e = null;
    }
  }
  if (!e) {
    // BullMQ's own reasons: the stalled-job limit (its consumers died), a lost lock, ...
    const stalled = /stalled/i.test(s);
    return new WorkerError(
      stalled
        ? `job ${ctx.jobId || ''} failed: its consumer died while running it more than the allowed ${DEFAULTS.maxStalledCount} time(s) (${s})`
        : `job ${ctx.jobId || ''} failed on the queue: ${s}`,
      { code: stalled ? 'worker_crashed' : 'internal', attempts: ctx.attempts },
    );
  }
  switch (e.type) {
    case 'TimeoutError':
      return new TimeoutError(e.message, { timeoutMs: e.timeoutMs, workerPid: e.workerPid ?? null });
    case 'QueueFullError':
      return new QueueFullError(e.message, { maxQueue: e.maxQueue ?? 0 });
    case 'PoolClosedError':
      return new PoolClosedError(e.message);
    case 'AbortError':
      return new AbortError(e.message);
    default:
      return new WorkerError(e.message, { code: e.code || 'internal', workerPid: e.workerPid ?? null, retriable: e.retriable, attempts: ctx.attempts });
  }
}

module.exports = { DEFAULTS, keys, connect, connectionOptions, describeRedis, encodeError, decodeError, within, MiB };
