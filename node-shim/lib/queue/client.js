'use strict';

/**
 * The producer side of the queue, with the pool's shape:
 *
 *   const q = createQueueClient({ redis: 'redis://127.0.0.1:6379', queue: 'photos' });
 *   const png = await q.remove(buffer, { maxSize: 800 });
 *   await q.close();
 *
 * The input goes to Redis as raw bytes under its own key, the job (BullMQ)
 * carries only its options; a consumer on any machine runs it and stores the
 * result's bytes under a key with a TTL; this client hears of it through
 * BullMQ's QueueEvents and fetches the bytes. Rejections are the pool's typed
 * errors (WorkerError with the worker's code, TimeoutError, QueueFullError,
 * PoolClosedError, AbortError).
 *
 * @module pyworker/queue/client
 */

const { EventEmitter } = require('node:events');
const { randomUUID } = require('node:crypto');
const { requirePeer } = require('../optional');

const { Queue, QueueEvents, Job } = requirePeer('bullmq', 'The queue (createQueueClient)');
const { takeRequest, refuse, settleFailure, onAbort } = require('../front');
const { runBatch } = require('../batches');
const { WorkerError, TimeoutError, QueueFullError, PoolClosedError, AbortError } = require('../errors');
const { DEFAULTS, keys, connect, connectionOptions, decodeError, within, MiB } = require('./settings');
const { resultBuffer } = require('../fallback');

/** Client-only options: acted on here, never sent to a consumer. */
const LOCAL_OPTIONS = new Set(['signal', 'fallback', 'timeoutMs']);

/** How often unsettled jobs are looked up directly, in case an event was missed (a reconnect). */
const SWEEP_MS = 5000;

/**
 * @typedef {object} Pending
 * @property {string} id
 * @property {Buffer|null} input kept only for fallback: 'original'
 * @property {'throw'|'original'} fallback
 * @property {(v: any) => void} resolve
 * @property {(e: Error) => void} reject
 * @property {number} addedAt
 * @property {NodeJS.Timeout|null} timer
 * @property {AbortSignal|undefined} signal
 * @property {(() => void)|null} onAbort
 * @property {boolean} [queued] its BullMQ job was added
 * @property {number} [missed] sweeps in a row that found no job record
 */

let warnedOldTimeoutName = false;
/** Once per process: the queue client's jobTimeoutMs was renamed (it meant another span than the pool's). */
function warnOldTimeoutName() {
  if (warnedOldTimeoutName) return;
  warnedOldTimeoutName = true;
  process.emitWarning("createQueueClient's jobTimeoutMs is now deadlineMs (enqueue to result; the pool's jobTimeoutMs is one run on a worker)", { type: 'DeprecationWarning', code: 'PYWORKER_QUEUE_JOB_TIMEOUT' });
}

/**
 * @param {object} opts
 * @param {string|Record<string, any>} opts.redis redis://HOST:PORT or ioredis options
 * @param {string} opts.queue
 * @param {number} [opts.resultTtlMs]
 * @param {number} [opts.deadlineMs] from enqueue to result (the pool's jobTimeoutMs is one run on a worker)
 * @param {number} [opts.jobTimeoutMs] deprecated: the old name of deadlineMs
 * @param {number} [opts.maxQueuedJobs]
 * @param {number} [opts.maxQueuedBytes]
 * @param {number} [opts.maxInputMb] one input's size; larger: input_too_large before anything reaches Redis
 * @param {number} [opts.attempts]
 * @param {number} [opts.backoffMs]
 * @param {'throw'|'original'} [opts.fallback]
 * @param {string} [opts.prefix]
 */
function createQueueClient(opts) {
  return new QueueClient(opts);
}

class QueueClient extends EventEmitter {
  /** @param {Parameters<typeof createQueueClient>[0]} opts */
  constructor(opts) {
    super();
    if (!opts || !opts.redis || !opts.queue) throw new TypeError('createQueueClient needs {redis, queue}');
    if (opts.jobTimeoutMs !== undefined) {
      if (opts.deadlineMs !== undefined && opts.deadlineMs !== opts.jobTimeoutMs) throw new TypeError('createQueueClient: give deadlineMs only (jobTimeoutMs is its old name)');
      warnOldTimeoutName();
    }
    this.options = {
      resultTtlMs: opts.resultTtlMs ?? DEFAULTS.resultTtlMs,
      deadlineMs: opts.deadlineMs ?? opts.jobTimeoutMs ?? DEFAULTS.deadlineMs,
      maxQueuedJobs: opts.maxQueuedJobs ?? DEFAULTS.maxQueuedJobs,
      maxQueuedBytes: opts.maxQueuedBytes ?? DEFAULTS.maxQueuedBytes,
      maxInputMb: opts.maxInputMb ?? DEFAULTS.maxInputMb,
      attempts: opts.attempts ?? DEFAULTS.attempts,
      backoffMs: opts.backoffMs ?? DEFAULTS.backoffMs,
      fallback: opts.fallback || 'throw',
      prefix: opts.prefix || DEFAULTS.prefix,
    };
    this.queueName = opts.queue;
    this._keys = keys(this.options.prefix, opts.queue);
    this._redis = connect(opts.redis);
    // Events are read from the moment this client was made: none is missed
    // between here and the first blocking read.
    this._events = new QueueEvents(opts.queue, {
      connection: connectionOptions(opts.redis),
      prefix: this.options.prefix,
      lastEventId: `${Date.now() - 1}-0`,
    });
    this._queue = new Queue(opts.queue, { connection: this._redis, prefix: this.options.prefix });
    this._events.on('error', (/** @type {Error} */ err) => this._error(err));
    this._queue.on('error', (/** @type {Error} */ err) => this._error(err));
    /** @type {Map<string, Pending>} */
    this._pending = new Map();
    this._closed = false;
    this._events.on('completed', (/** @type {{jobId: string, returnvalue: unknown}} */ { jobId, returnvalue }) => this._onCompleted(jobId, returnvalue));
    this._events.on('failed', (/** @type {{jobId: string, failedReason: string}} */ { jobId, failedReason }) => this._onFailed(jobId, failedReason));
    this._sweeper = setInterval(() => this._sweep(), SWEEP_MS);
    this._sweeper.unref();
    this._ready = Promise.all([this._events.waitUntilReady(), this._queue.waitUntilReady()]).then(() => undefined);
    this._ready.catch(() => {});
  }

  /** Reports an error to 'error' listeners, if any (an unheard 'error' event would crash the process). @param {Error} err */
  _error(err) {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** Resolves once Redis answers. */
  ready() {
    return this._ready;
  }

  /**
   * Remove the background of one image on whichever consumer takes it.
   * @param {Buffer|Uint8Array} image
   * @param {Record<string, any>} [options]
   * @returns {Promise<Buffer>}
   */
  remove(image, options) {
    return this.removeWithMeta(image, options).then(resultBuffer);
  }


  /**
   * Like remove(), with the reply's details: {image, mime, meta, stats,
   * workerPid, consumer, attempts, jobId, fallback}.
   * @param {Buffer|Uint8Array} image
   * @param {Record<string, any>} [options]
   */
  removeWithMeta(image, options) {
    return this._submit(image, options);
  }

  /**
   * Many photos as one batch: returns at once a Batch (lib/batches.js) with
   * its id, that emits `progress` ({done, failed, total, index, name, ok,
   * error}) as each photo finishes on whichever consumer, and `end`.
   * @param {({name: string, data: Buffer}|Buffer)[]} files
   * @param {Record<string, any> & {concurrency?: number}} [options] remove options for every photo
   */
  removeBatch(files, options = {}) {
    const { concurrency, ...removeOptions } = options;
    // Send up to the queue's admission limit at once; the consumers set the pace.
    return runBatch(this, files, removeOptions, { concurrency: concurrency ?? Math.min(64, this.options.maxQueuedJobs) });
  }

  /**
   * @param {unknown} image
   * @param {Record<string, any>|undefined} options
   */
  async _submit(image, options) {
    const { buf, parsed } = takeRequest(image, options); // bad_request here, before anything is queued
    if (this._closed) throw new PoolClosedError('the queue client is closed; create a new one');
    if (parsed.signal && parsed.signal.aborted) throw new AbortError(parsed.signal.reason);
    const fallback = parsed.fallback || this.options.fallback;
    if (buf.length > this.options.maxInputMb * MiB) {
      // The worker's input limit, applied before Redis, the consumer and the worker each hold the bytes.
      const mb = (/** @type {number} */ n) => `${Number.isInteger(n) ? n : n.toFixed(1)}MB`;
      return refuse(fallback, buf, new WorkerError(`File size (${mb(buf.length / MiB)}) exceeds maximum (${mb(this.options.maxInputMb)})`, { code: 'input_too_large' }));
    }
    const timeoutMs = parsed.timeoutMs ?? this.options.deadlineMs;
    /** @type {Record<string, unknown>} */
    const sent = {};
    for (const [k, v] of Object.entries(options || {})) if (!LOCAL_OPTIONS.has(k) && v !== undefined) sent[k] = v;

    await this._ready;
    const id = randomUUID();
    const k = this._keys;
    let verdict, jobs, bytes;
    try {
      [verdict, jobs, bytes] = await this._redis.pyworkerAdmit(k.pending, k.pendingBytes, id, buf.length, this.options.maxQueuedJobs, this.options.maxQueuedBytes);
    } catch (err) {
      // close() cut the connection meanwhile: say so, not "Connection is closed".
      if (this._closed) throw new PoolClosedError('the queue client is closed; create a new one');
      throw err;
    }
    if (verdict !== 0) {
      const err =
        verdict === 1
          ? new QueueFullError(`queue "${this.queueName}" is full: ${jobs} jobs not finished (maxQueuedJobs=${this.options.maxQueuedJobs}); retry later`, {
              maxQueue: this.options.maxQueuedJobs,
            })
          : new QueueFullError(
              `queue "${this.queueName}" is full: ${(bytes / MiB).toFixed(1)}MB of inputs not finished, this one ${(buf.length / MiB).toFixed(1)}MB (maxQueuedBytes=${(this.options.maxQueuedBytes / MiB).toFixed(1)}MB); retry later`,
              { maxQueue: this.options.maxQueuedJobs },
            );
      return refuse(fallback, buf, err);
    }

    if (this._closed) {
      // close() came while this job was being admitted.
      this._release(id);
      throw new PoolClosedError('the queue client is closed; create a new one');
    }
    const result = new Promise((resolve, reject) => {
      /** @type {Pending} */
      const p = {
        id,
        input: fallback === 'original' ? buf : /** @type {any} */ (null),
        fallback,
        resolve,
        reject,
        addedAt: Date.now(),
        timer: null,
        signal: parsed.signal,
        onAbort: null,
      };
      if (Number.isFinite(timeoutMs)) {
        p.timer = setTimeout(() => this._giveUp(p, new TimeoutError(`job ${id} did not finish within ${timeoutMs} ms (queue "${this.queueName}")`, { timeoutMs })), timeoutMs);
      }
      // One listener per signal, however many jobs share it (abort.js).
      if (p.signal) p.onAbort = onAbort(p.signal, (reason) => this._giveUp(p, new AbortError(reason)));
      this._pending.set(id, p);
    });
    // An abort or timeout may settle `result` while the job is still being stored below, before the caller
    // holds it: without a handler by then Node reports an unhandled rejection. The caller still gets it.
    result.catch(() => {});
    try {
      await this._redis.set(k.input(id), buf, 'PX', this.options.resultTtlMs);
      const ttlS = Math.ceil(this.options.resultTtlMs / 1000);
      await this._queue.add(
        'remove',
        { options: sent, bytes: buf.length, resultTtlMs: this.options.resultTtlMs, timeoutMs, deadline: Number.isFinite(timeoutMs) ? Date.now() + timeoutMs : undefined },
        {
          jobId: id,
          attempts: this.options.attempts,
          backoff: { type: 'exponential', delay: this.options.backoffMs },
          removeOnComplete: { age: ttlS },
          removeOnFail: { age: ttlS },
        },
      );
      const p = this._pending.get(id);
      if (p) p.queued = true;
      else this._drop(id); // given up while being added: _giveUp's remove came too early to find it
    } catch (err) {
      const p = this._pending.get(id);
      if (p) this._finish(p);
      this._release(id);
      throw err;
    }
    return result;
  }

  /** @param {string} id */
  _release(id) {
    const k = this._keys;
    return this._redis.pyworkerRelease(k.pending, k.pendingBytes, id).catch(() => {});
  }

  /** Forget a pending job (once). @param {Pending} p */
  _finish(p) {
    if (!this._pending.delete(p.id)) return false;
    if (p.timer) clearTimeout(p.timer);
    if (p.onAbort) p.onAbort(); // stop watching the signal
    p.onAbort = null;
    return true;
  }

  /** The caller stops waiting (timeout, abort): settle now, drop the job if still waiting. @param {Pending} p @param {Error} err */
  _giveUp(p, err) {
    if (!this._finish(p)) return;
    this._reject(p, err);
    this._drop(p.id);
  }

  /** A waiting job is removed with its input and admission; a running one finishes and its result expires unread. @param {string} id */
  _drop(id) {
    this._queue
      .remove(id)
      .then((/** @type {number} */ removed) => {
        if (removed) {
          this._release(id);
          this._redis.del(this._keys.input(id)).catch(() => {});
        }
      })
      .catch(() => {});
  }

  /** @param {Pending} p @param {Error} err */
  _reject(p, err) {
    settleFailure(p.fallback, p.input, err, p);
  }

  /** @param {string} jobId @param {unknown} returnvalue */
  async _onCompleted(jobId, returnvalue) {
    const p = this._pending.get(jobId);
    if (!p || !this._finish(p)) return;
    try {
      const rv = typeof returnvalue === 'string' ? JSON.parse(returnvalue) : /** @type {any} */ (returnvalue);
      const key = this._keys.result(jobId);
      const image = await this._redis.getBuffer(key);
      this._redis.del(key).catch(() => {}); // fetched once; the TTL covers a producer that died first
      this._release(jobId);
      if (!image) {
        this._reject(p, new WorkerError(`the result of job ${jobId} is no longer in Redis (kept ${this.options.resultTtlMs} ms)`, { code: 'expired' }));
        return;
      }
      p.resolve({
        image,
        mime: rv.mime,
        meta: rv.meta,
        stats: rv.stats,
        workerPid: rv.workerPid,
        consumer: rv.consumer,
        attempts: rv.attempts,
        jobId,
        fallback: false,
      });
    } catch (err) {
      this._reject(p, /** @type {Error} */ (err));
    }
  }

  /** @param {string} jobId @param {string} failedReason */
  async _onFailed(jobId, failedReason) {
    const p = this._pending.get(jobId);
    if (!p || !this._finish(p)) return;
    this._release(jobId);
    let attempts;
    try {
      const job = await Job.fromId(this._queue, jobId);
      attempts = job ? job.attemptsMade : undefined;
    } catch {
      attempts = undefined;
    }
    this._reject(p, decodeError(failedReason, { attempts, jobId }));
  }

  /** Looks up jobs older than one sweep whose end this client has not heard of. */
  async _sweep() {
    const now = Date.now();
    const old = [...this._pending.values()].filter((p) => now - p.addedAt > SWEEP_MS).slice(0, 100);
    for (const p of old) {
      try {
        const job = await Job.fromId(this._queue, p.id);
        if (!job) {
          // Added, then gone before it finished: Redis restarted without persistence (or evicted it). Its
          // consumer cannot finish it either: say so now, not job_timeout after deadlineMs. Two sweeps in a
          // row (5-15 s), so a job whose record is being written is never taken for lost.
          if (p.queued && (p.missed = (p.missed || 0) + 1) >= 2 && this._finish(p)) {
            this._release(p.id);
            this._reject(p, new WorkerError(`job ${p.id} is no longer in Redis (queue "${this.queueName}"): Redis restarted without persistence or evicted it; nothing was done for it, send it again`, { code: 'job_lost' }));
          }
          continue;
        }
        p.missed = 0;
        if (job.finishedOn && job.failedReason) this._onFailed(p.id, job.failedReason);
        else if (job.finishedOn) this._onCompleted(p.id, job.returnvalue);
      } catch {
        /* Redis unreachable: the next sweep tries again */
      }
    }
  }

  /**
   * Counts of the queue (BullMQ's) and of our admission limits.
   * @returns {Promise<Record<string, number>>}
   */
  async stats() {
    const counts = await this._queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
    const k = this._keys;
    const [queuedJobs, queuedBytes] = await Promise.all([this._redis.hlen(k.pending), this._redis.get(k.pendingBytes)]);
    const workers = await this._queue.getWorkers();
    return { ...counts, queuedJobs, queuedBytes: Number(queuedBytes || 0), consumers: workers.length, waitingForResults: this._pending.size };
  }

  /**
   * Stop: jobs still awaited reject with PoolClosedError (they go on in the
   * queue; their results expire unread), Redis connections close.
   */
  async close() {
    if (this._closed) return;
    this._closed = true;
    clearInterval(this._sweeper);
    const err = new PoolClosedError('the queue client was closed before the job finished');
    for (const p of [...this._pending.values()]) if (this._finish(p)) this._reject(p, err);
    await within(Promise.allSettled([this._events.close(), this._queue.close()]), DEFAULTS.closeTimeoutMs);
    if (!(await within(this._redis.quit(), DEFAULTS.closeTimeoutMs))) this._redis.disconnect();
    // A Redis that is gone: BullMQ's own connections stop retrying too.
    for (const c of [this._events, this._queue]) c.disconnect().catch(() => {});
    // ...except that bullmq 5's QueueEvents waits for its connection to be ready before ending it, which never
    // happens while Redis is unreachable, and its reconnect timer then keeps the process alive after close():
    // end that ioredis client directly (RedisConnection's own field; absent in another bullmq, then skipped).
    const events = /** @type {any} */ (this._events).connection?._client;
    if (events && typeof events.disconnect === 'function' && events.status !== 'end') events.disconnect();
  }
}

module.exports = { createQueueClient, QueueClient };
