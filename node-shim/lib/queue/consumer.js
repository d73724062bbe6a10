'use strict';

/**
 * The consumer side of the queue: a BullMQ Worker that takes jobs from Redis
 * and runs them on a local supervised pool (all of the pool's limits apply).
 * One per machine; `bin/pyworker-queue-worker.js` is its command.
 *
 * @module pyworker/queue/consumer
 */

const os = require('node:os');
const { EventEmitter } = require('node:events');
const { requirePeer } = require('../optional');

const { Worker, UnrecoverableError } = requirePeer('bullmq', 'The queue consumer (pyworker-queue-worker, createQueueConsumer)');
const { createPool, Pool } = require('../pool');
const { TimeoutError } = require('../errors');
const { DEFAULTS, keys, connect, connectionOptions, encodeError, within } = require('./settings');

/**
 * @param {object} opts
 * @param {string|Record<string, any>} opts.redis redis://HOST:PORT or ioredis options
 * @param {string} opts.queue queue name
 * @param {Pool|Record<string, any>} [opts.pool] a Pool, or options for the consumer's own pool
 * @param {number} [opts.concurrency] jobs run at once (default: the pool's size)
 * @param {number} [opts.lockDurationMs]
 * @param {number} [opts.stalledIntervalMs]
 * @param {number} [opts.maxStalledCount]
 * @param {string} [opts.prefix]
 */
function createQueueConsumer(opts) {
  return new QueueConsumer(opts);
}

class QueueConsumer extends EventEmitter {
  /** @param {Parameters<typeof createQueueConsumer>[0]} opts */
  constructor(opts) {
    super();
    if (!opts || !opts.redis || !opts.queue) throw new TypeError('createQueueConsumer needs {redis, queue}');
    const prefix = opts.prefix || DEFAULTS.prefix;
    this.queueName = opts.queue;
    this._ownPool = !(opts.pool instanceof Pool);
    /** @type {Pool} */
    this.pool = opts.pool instanceof Pool ? opts.pool : createPool(opts.pool || {});
    this.concurrency = opts.concurrency || this.pool.options.size;
    this.name = `${os.hostname()}:${process.pid}`;
    this._keys = keys(prefix, opts.queue);
    this._redis = connect(opts.redis);
    this._closing = null;
    this.counters = { completed: 0, failed: 0, retried: 0 };
    this.worker = new Worker(opts.queue, (/** @type {import('bullmq').Job} */ job) => this._process(job), {
      connection: connectionOptions(opts.redis),
      prefix,
      concurrency: this.concurrency,
      autorun: false,
      lockDuration: opts.lockDurationMs ?? DEFAULTS.lockDurationMs,
      stalledInterval: opts.stalledIntervalMs ?? DEFAULTS.stalledIntervalMs,
      maxStalledCount: opts.maxStalledCount ?? DEFAULTS.maxStalledCount,
      name: this.name,
    });
    this.worker.on('error', (/** @type {Error} */ err) => this._error(err));
    this.worker.on('completed', (/** @type {import('bullmq').Job} */ job) => {
      this.counters.completed += 1;
      // The job is finished for good (BullMQ accepted the result under our lock).
      this._release(/** @type {string} */ (job.id));
    });
    this.worker.on('stalled', (/** @type {string} */ jobId) => this.emit('stalled', jobId));
  }

  /** Waits for a ready worker in the pool, then starts taking jobs. */
  async start() {
    await this.pool.ready();
    await this.worker.waitUntilReady();
    this.worker.run().catch((/** @type {Error} */ err) => this._error(err));
    return this;
  }

  /** @param {string} id */
  _release(id) {
    const k = this._keys;
    return Promise.all([this._redis.pyworkerRelease(k.pending, k.pendingBytes, id), this._redis.del(k.input(id))]).catch((err) => this._error(err));
  }

  /** @param {import('bullmq').Job} job */
  async _process(job) {
    const id = /** @type {string} */ (job.id);
    const data = job.data || {};
    const final = () => job.attemptsMade + 1 >= (job.opts.attempts || 1);
    /** @param {any} err @param {boolean} retriable */
    const fail = async (err, retriable) => {
      if (!retriable || final()) {
        this.counters.failed += 1;
        await this._release(id);
        throw new UnrecoverableError(encodeError(err));
      }
      this.counters.retried += 1;
      throw new Error(encodeError(err));
    };

    const image = await this._redis.getBuffer(this._keys.input(id));
    if (!image) {
      return fail({ name: 'WorkerError', code: 'expired', message: `the input of job ${id} is no longer in Redis (kept ${data.resultTtlMs} ms)` }, false);
    }
    /** @type {Record<string, any>} */
    const options = { ...(data.options || {}) };
    if (typeof data.deadline === 'number') {
      // The caller stops waiting at its deadline: no use running the job after it.
      const left = data.deadline - Date.now();
      if (left <= 0) return fail(new TimeoutError(`job ${id} waited in the queue past its ${data.timeoutMs} ms deadline`, { timeoutMs: data.timeoutMs }), false);
      options.timeoutMs = Math.min(left, this.pool.options.jobTimeoutMs);
    }
    let r;
    try {
      r = await this.pool.removeWithMeta(image, options);
    } catch (err) {
      const e = /** @type {any} */ (err);
      // Worth another run (maybe elsewhere): a worker died with it, would not start, or this consumer is closing.
      const retriable = Boolean(e && (e.retriable || e.code === 'start_failed' || e.code === 'pool_closed' || e.code === 'queue_full'));
      return fail(err, retriable);
    }
    // Raw bytes under their own key with a TTL: no base64 in the job's JSON.
    await this._redis.set(this._keys.result(id), r.image, 'PX', data.resultTtlMs || DEFAULTS.resultTtlMs);
    return {
      mime: r.mime,
      bytes: r.image.length,
      meta: r.meta,
      stats: r.stats,
      workerPid: r.workerPid,
      consumer: this.name,
      // Runs of this job so far, counting those whose consumer died (BullMQ's attemptsMade counts only failures).
      attempts: Math.max(job.attemptsStarted || 0, job.attemptsMade + 1),
    };
  }

  /** Reports an error to 'error' listeners, if any (an unheard 'error' event would crash the process). @param {Error} err */
  _error(err) {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  /** Resolves when this consumer's pool has no job queued or running. */
  async _idle() {
    for (;;) {
      const s = this.pool.stats();
      if (s.queued === 0 && s.running === 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Counters and the pool's stats. */
  stats() {
    return { consumer: this.name, queue: this.queueName, concurrency: this.concurrency, ...this.counters, pool: this.pool.stats() };
  }

  /**
   * Drain: take no new job, let the running ones finish (their results are
   * stored), then stop the pool (when it is the consumer's own) and Redis.
   * @param {{force?: boolean}} [opts]
   */
  close(opts = {}) {
    if (!this._closing) {
      this._closing = (async () => {
        // With Redis gone, BullMQ's close waits on its connections forever: the
        // jobs in hand still finish (the pool drains below), the Redis side is cut.
        const closing = this.worker.close(Boolean(opts.force));
        await Promise.race([closing, this._idle()]);
        if (!(await within(closing, DEFAULTS.closeTimeoutMs))) this.worker.disconnect().catch(() => {});
        if (this._ownPool) await this.pool.close(opts);
        if (!(await within(this._redis.quit(), DEFAULTS.closeTimeoutMs))) this._redis.disconnect();
      })();
    }
    return this._closing;
  }
}

module.exports = { createQueueConsumer, QueueConsumer };
