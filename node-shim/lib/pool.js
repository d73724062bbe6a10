'use strict';

/**
 * A pool of pyworker processes: a FIFO queue of jobs, one job at a time per
 * worker, retries on a worker's death, timeouts, recycling (memory, job
 * count), start-failure back-off, draining close.
 *
 * @module pyworker/pool
 */

const { EventEmitter } = require('node:events');
const { randomInt } = require('node:crypto');
const { Worker } = require('./worker');
const { WorkerError, TimeoutError, QueueFullError, PoolClosedError, AbortError, PyworkerError, isCallerError } = require('./errors');
const { parseRequestOptions, camelize } = require('./request-options');
const { normalizePoolOptions, workerArgs } = require('./settings');
const { workerSpawnEnv } = require('./spawn');
const { makeLogger } = require('./logger');
const { sniffMime } = require('./mime');

const MiB = 1024 * 1024;

/**
 * @typedef {object} Job
 * @property {number} serial
 * @property {Buffer} image
 * @property {Record<string, unknown>} wire options, snake_case
 * @property {AbortSignal|undefined} signal
 * @property {number} timeoutMs
 * @property {'throw'|'original'} fallback
 * @property {(v: any) => void} resolve
 * @property {(e: Error) => void} reject
 * @property {number} attempts
 * @property {'queued'|'running'|'done'} state
 * @property {number} enqueuedAt
 * @property {number} [startedAt]
 * @property {(() => void)|null} onAbort
 * @property {Worker|null} worker
 */

/** @param {number} mb */
function fmtMb(mb) {
  if (Number.isInteger(mb)) return `${mb}MB`;
  return `${mb.toFixed(mb >= 1 ? 1 : 2)}MB`;
}

class Pool extends EventEmitter {
  /** @param {Record<string, any>} [options] see index.d.ts PoolOptions */
  constructor(options = {}) {
    super();
    this.options = normalizePoolOptions(options);
    this._log = makeLogger(this.options.logger);
    const { env, cwd } = workerSpawnEnv(this.options);
    this._spawnEnv = env;
    this._spawnCwd = cwd;
    this._args = workerArgs(this.options);

    /** @type {Set<Worker>} */
    this.workers = new Set();
    /** @type {Job[]} */
    this.queue = [];
    /** Jobs sent to a worker whose request has not settled yet (reply or failure). */
    /** @type {Set<Job>} */
    this._inFlight = new Set();
    this._nextId = 1;
    this._jobSerial = 1;
    this._closing = false;
    this._forced = false;
    /** @type {Promise<void>|null} */
    this._closePromise = null;
    /** @type {(() => void)[]} */
    this._drainWaiters = [];
    /** @type {{resolve: () => void, reject: (e: Error) => void}[]} */
    this._readyWaiters = [];
    this._everReady = false;
    /** @type {Record<string, any>|null} the first ready frame, for limits */
    this.workerInfo = null;
    this._startFailures = 0;
    /** @type {WorkerError|null} */
    this._lastStartError = null;
    this._backoffUntil = 0;
    /** @type {NodeJS.Timeout|null} */
    this._backoffTimer = null;
    this._pumping = false;
    this._pumpAgain = false;
    this._counters = {
      submitted: 0,
      completed: 0,
      failed: 0,
      retried: 0,
      timedOut: 0,
      aborted: 0,
      fallbacks: 0,
      queueFull: 0,
      workersStarted: 0,
      startFailures: 0,
    };
    this._recycled = { memory: 0, jobs: 0, crash: 0, timeout: 0 };

    this._pump();
  }

  // -------------------------------------------------------------------------
  // Public API

  /**
   * Resolves when a worker is ready to serve (at once if one is). Starts one
   * if the pool is lazy and has none. Rejects with the start error (e.g. a
   * `model_unavailable` WorkerError) if workers cannot start.
   * @returns {Promise<void>}
   */
  ready() {
    if (this._closing) return Promise.reject(new PoolClosedError());
    if (this._readyWorkers().length > 0) return Promise.resolve();
    const startError = this._failFastError();
    if (startError) return Promise.reject(startError);
    return new Promise((resolve, reject) => {
      this._readyWaiters.push({ resolve, reject });
      this._pump();
    });
  }

  /**
   * Remove the background of one image.
   * @param {Buffer|Uint8Array} image
   * @param {Record<string, any>} [options]
   * @returns {Promise<Buffer>}
   */
  remove(image, options) {
    return this._submit(image, options).then((r) => {
      if (!r.fallback) return r.image;
      const buf = Buffer.from(r.image.buffer, r.image.byteOffset, r.image.byteLength);
      Object.defineProperty(buf, 'pyworkerFallback', { value: r.error, enumerable: false });
      return buf;
    });
  }

  /**
   * Like remove(), with the reply's details.
   * @param {Buffer|Uint8Array} image
   * @param {Record<string, any>} [options]
   */
  removeWithMeta(image, options) {
    return this._submit(image, options);
  }

  /** Snapshot of the pool: workers with their last reported RSS, queue, counters. */
  stats() {
    const now = Date.now();
    const workers = [...this.workers].map((w) => {
      const s = w.lastStats || {};
      /** @type {string} */
      let state = w.state;
      if (w.state === 'ready') state = w.retiring || /** @type {any} */ (w).recycleReason ? 'retiring' : w.busy ? 'busy' : 'idle';
      return {
        pid: w.pid ?? null,
        state,
        jobs: w.jobs,
        rssMb: typeof s.rss_mb === 'number' ? s.rss_mb : null,
        peakRssMb: typeof s.peak_rss_mb === 'number' ? s.peak_rss_mb : null,
        model: w.info ? w.info.model : null,
        threads: w.info ? w.info.threads : null,
        uptimeMs: now - w.startedAt,
        maxJobs: Number.isFinite(/** @type {any} */ (w).maxJobs) ? /** @type {any} */ (w).maxJobs : null,
      };
    });
    return {
      size: this.options.size,
      threads: this.options.threads,
      closing: this._closing,
      ready: workers.some((w) => w.state === 'idle' || w.state === 'busy'),
      queued: this.queue.length,
      running: [...this.workers].filter((w) => /** @type {any} */ (w).job).length,
      maxQueue: this.options.maxQueue,
      memoryLimitMb: this.options.memoryLimitMb,
      workers,
      totalRssMb: Math.round(workers.reduce((a, w) => a + (w.rssMb || 0), 0) * 10) / 10,
      ...this._counters,
      recycled: { ...this._recycled },
      lastStartError: this._lastStartError ? { code: this._lastStartError.code, message: this._lastStartError.message } : null,
      backoffMs: Math.max(0, this._backoffUntil - now),
    };
  }

  /**
   * Stop the pool. By default queued and running jobs finish first; then each
   * worker gets `shutdown` and `closeTimeoutMs` to exit before SIGKILL. With
   * `{force: true}` queued and running jobs reject with PoolClosedError and
   * the workers are killed at once. Resolves when every worker process is gone.
   *
   * @param {{force?: boolean}} [opts]
   * @returns {Promise<void>}
   */
  close(opts = {}) {
    this._closing = true;
    for (const w of this._readyWaiters.splice(0)) w.reject(new PoolClosedError());
    if (opts.force && !this._forced) {
      this._forced = true;
      const err = new PoolClosedError('the pool was closed with {force: true}; the job was cancelled');
      for (const job of this.queue.splice(0)) this._settle(job, err);
      for (const w of this.workers) {
        const job = /** @type {any} */ (w).job;
        if (job) this._settle(job, err);
        w.kill('SIGKILL', 'shutdown');
      }
    }
    if (!this._closePromise) {
      this._closePromise = (async () => {
        await this._drained();
        this._clearBackoff();
        while (this.workers.size > 0) {
          await Promise.all(
            [...this.workers].map((w) => (this._forced ? (w.kill('SIGKILL', 'shutdown'), w.exited) : w.stop({ graceMs: this.options.closeTimeoutMs, id: this._nextId++ }))),
          );
        }
        this._log({ level: 'debug', event: 'pool_closed', source: 'client' });
      })();
    }
    this._pump();
    return this._closePromise;
  }

  // -------------------------------------------------------------------------
  // Jobs

  /**
   * @param {unknown} image
   * @param {Record<string, any>|undefined} options
   * @returns {Promise<any>}
   */
  _submit(image, options) {
    let parsed;
    try {
      if (!(image instanceof Uint8Array)) {
        throw new TypeError(`image must be a Buffer or Uint8Array, got ${image === null ? 'null' : typeof image}`);
      }
      parsed = parseRequestOptions(options, this.workerInfo && this.workerInfo.limits);
    } catch (err) {
      return Promise.reject(err);
    }
    const buf = Buffer.isBuffer(image) ? image : Buffer.from(image.buffer, image.byteOffset, image.byteLength);
    const fallback = parsed.fallback || this.options.fallback;
    /** @param {Error} err */
    const refuse = (err) => (fallback === 'original' && this._fallbackApplies(err) ? Promise.resolve(this._fallbackResult(buf, err)) : Promise.reject(err));

    if (this._closing) return Promise.reject(new PoolClosedError());
    if (parsed.signal && parsed.signal.aborted) {
      this._counters.aborted += 1;
      return Promise.reject(new AbortError(parsed.signal.reason));
    }
    const limits = this.workerInfo && this.workerInfo.limits;
    if (limits && typeof limits.max_input_mb === 'number' && buf.length > limits.max_input_mb * MiB) {
      return refuse(
        new WorkerError(`File size (${fmtMb(buf.length / MiB)}) exceeds maximum (${fmtMb(limits.max_input_mb)})`, {
          code: 'input_too_large',
        }),
      );
    }
    const startError = this._failFastError();
    if (startError) return refuse(startError);
    if (this.queue.length >= this.options.maxQueue && !this._idleWorker()) {
      this._counters.queueFull += 1;
      return refuse(
        new QueueFullError(`queue is full (maxQueue=${this.options.maxQueue}); retry later or raise maxQueue`, {
          maxQueue: this.options.maxQueue,
        }),
      );
    }

    this._counters.submitted += 1;
    return new Promise((resolve, reject) => {
      /** @type {Job} */
      const job = {
        serial: this._jobSerial++,
        image: buf,
        wire: parsed.wire,
        signal: parsed.signal,
        timeoutMs: parsed.timeoutMs ?? this.options.jobTimeoutMs,
        fallback,
        resolve,
        reject,
        attempts: 0,
        state: 'queued',
        enqueuedAt: Date.now(),
        onAbort: null,
        worker: null,
      };
      if (job.signal) {
        const signal = job.signal;
        job.onAbort = () => this._abort(job, signal.reason);
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queue.push(job);
      this._pump();
    });
  }

  /** @param {Error} err */
  _fallbackApplies(err) {
    // Worker-side failures only: the caller's own mistakes always reject (errors.CALLER_CODES).
    if (isCallerError(err)) return false;
    return err instanceof WorkerError || err instanceof TimeoutError || err instanceof QueueFullError;
  }

  /** @param {Buffer} image @param {Error} error */
  _fallbackResult(image, error) {
    this._counters.fallbacks += 1;
    this._log({ level: 'warn', event: 'fallback', source: 'client', code: /** @type {any} */ (error).code, message: error.message });
    return { image, mime: sniffMime(image), meta: null, stats: null, workerPid: null, attempts: 0, fallback: true, error };
  }

  /**
   * Settle a job once: resolve with a result, or reject (or fall back).
   * @param {Job} job
   * @param {Error|null} err
   * @param {any} [result]
   */
  _settle(job, err, result) {
    if (job.state === 'done') return;
    const wasQueued = job.state === 'queued';
    job.state = 'done';
    if (wasQueued) {
      const i = this.queue.indexOf(job);
      if (i >= 0) this.queue.splice(i, 1);
    }
    if (job.signal && job.onAbort) job.signal.removeEventListener('abort', job.onAbort);
    job.onAbort = null;
    const input = job.image;
    job.image = /** @type {any} */ (null); // let the input go once nothing can resend it
    if (!err) {
      this._counters.completed += 1;
      job.resolve(result);
    } else if (job.fallback === 'original' && this._fallbackApplies(err)) {
      this._counters.failed += 1;
      job.resolve(this._fallbackResult(input, err));
    } else {
      this._counters.failed += 1;
      job.reject(err);
    }
    this._pump();
  }

  /** @param {Job} job @param {unknown} reason */
  _abort(job, reason) {
    if (job.state === 'done') return;
    this._counters.aborted += 1;
    // A running job's worker goes on; its late reply is discarded (see _onReply).
    this._settle(job, new AbortError(reason));
  }

  /** @param {Job} job @param {Worker} w */
  _run(job, w) {
    const wa = /** @type {any} */ (w);
    job.state = 'running';
    job.attempts += 1;
    job.startedAt = Date.now();
    job.worker = w;
    wa.job = job;
    this._inFlight.add(job);
    const id = this._nextId++;
    const timeoutMs = job.timeoutMs;
    if (Number.isFinite(timeoutMs)) {
      wa.jobTimer = setTimeout(() => this._onJobTimeout(w, job, timeoutMs), timeoutMs);
    }
    /** @type {Record<string, unknown> & {id: number, op: string}} */
    const msg = { id, op: 'remove', image: job.image };
    if (Object.keys(job.wire).length) msg.options = job.wire;
    w.request(msg).then(
      (reply) => this._onReply(w, job, reply),
      (err) => this._onRequestFailed(w, job, err),
    );
  }

  /** @param {Worker} w @param {Job} job */
  _releaseWorker(w, job) {
    this._inFlight.delete(job);
    const wa = /** @type {any} */ (w);
    if (wa.jobTimer) clearTimeout(wa.jobTimer);
    wa.jobTimer = null;
    wa.job = null;
  }

  /** @param {Worker} w @param {Job} job @param {Record<string, any>} reply */
  _onReply(w, job, reply) {
    this._releaseWorker(w, job);
    if (w.state === 'ready') this._checkRecycle(w, reply);
    if (job.state !== 'done') {
      if (reply.ok) {
        this._settle(job, null, {
          image: reply.image,
          mime: reply.mime,
          meta: camelize(reply.meta),
          stats: camelize(reply.stats),
          workerPid: w.pid,
          attempts: job.attempts,
          fallback: false,
        });
      } else {
        const e = reply.error && typeof reply.error === 'object' ? reply.error : {};
        this._settle(
          job,
          new WorkerError(String(e.message || 'the worker reported an error'), {
            code: typeof e.code === 'string' ? e.code : 'internal',
            workerPid: w.pid ?? null,
          }),
        );
      }
    }
    this._pump();
  }

  /** @param {Worker} w @param {Job} job @param {Error} err */
  _onRequestFailed(w, job, err) {
    this._releaseWorker(w, job);
    if (job.state === 'done') {
      this._pump();
      return;
    }
    const retriable = err instanceof WorkerError && err.retriable;
    if (retriable && job.attempts <= this.options.retries && !this._forced) {
      this._counters.retried += 1;
      this._log({
        level: 'warn',
        event: 'retry',
        source: 'client',
        job: job.serial,
        attempt: job.attempts + 1,
        pid: w.pid,
        reason: /** @type {WorkerError} */ (err).code,
        message: err.message,
      });
      job.state = 'queued';
      job.worker = null;
      this.queue.unshift(job);
      this._pump();
      return;
    }
    if (retriable) {
      const we = /** @type {WorkerError} */ (err);
      const tries = job.attempts === 1 ? '1 attempt' : `${job.attempts} attempts`;
      const final = new WorkerError(`${we.message} (gave up after ${tries}; retries=${this.options.retries})`, {
        code: we.code,
        workerPid: we.workerPid,
        retriable: true,
        exitCode: /** @type {any} */ (we).exitCode,
        signal: /** @type {any} */ (we).signal,
        attempts: job.attempts,
        cause: we.cause,
      });
      this._settle(job, final);
    } else {
      this._settle(job, err);
    }
  }

  /** @param {Worker} w @param {Job} job @param {number} timeoutMs */
  _onJobTimeout(w, job, timeoutMs) {
    const wa = /** @type {any} */ (w);
    wa.jobTimer = null;
    if (wa.job !== job) return;
    wa.timedOut = true;
    this._counters.timedOut += 1;
    this._log({ level: 'warn', event: 'job_timeout', source: 'client', pid: w.pid, job: job.serial, timeoutMs });
    w.kill('SIGKILL', 'timeout');
    if (job.state !== 'done') {
      this._settle(
        job,
        new TimeoutError(
          `the job took longer than ${timeoutMs} ms (jobTimeoutMs) on worker pid ${w.pid}; the worker was killed and replaced. ` +
            'Send a smaller image, a smaller maxSize, or raise jobTimeoutMs',
          { timeoutMs, workerPid: w.pid ?? null },
        ),
      );
    }
  }

  // -------------------------------------------------------------------------
  // Workers

  /** @param {Worker} w @param {Record<string, any>} reply */
  _checkRecycle(w, reply) {
    const wa = /** @type {any} */ (w);
    if (wa.recycleReason) return;
    const stats = reply.stats || {};
    /** @type {'memory'|'jobs'|null} */
    let reason = null;
    if (w.retiring) reason = 'memory';
    else if (this.options.memoryLimitMb !== null && typeof stats.rss_mb === 'number' && stats.rss_mb > this.options.memoryLimitMb) reason = 'memory';
    else if (Number.isFinite(wa.maxJobs) && w.jobs >= wa.maxJobs) reason = 'jobs';
    if (!reason) return;
    this._recycle(w, reason, { rssMb: stats.rss_mb ?? null, jobs: w.jobs });
  }

  /**
   * Retire a worker gracefully (it has no job in flight) and let _pump start
   * its replacement.
   * @param {Worker} w @param {'memory'|'jobs'} reason @param {Record<string, unknown>} details
   */
  _recycle(w, reason, details) {
    const wa = /** @type {any} */ (w);
    wa.recycleReason = reason;
    this._recycled[reason] += 1;
    this._log({ level: 'info', event: 'recycle', source: 'client', pid: w.pid, reason, ...details });
    this.emit('recycle', { pid: w.pid ?? null, reason, ...details });
    // A retiring worker exits 75 by itself; stop() then only closes stdin.
    w.stop({ graceMs: this.options.closeTimeoutMs, id: this._nextId++ });
  }

  _spawn() {
    const w = new Worker({
      python: this.options.python,
      args: this._args,
      env: this._spawnEnv,
      cwd: this._spawnCwd,
      startTimeoutMs: this.options.startTimeoutMs,
      maxReplyFrameBytes: this.options.maxReplyFrameMb * MiB,
      log: this._log,
    });
    const wa = /** @type {any} */ (w);
    const { maxJobsPerWorker, maxJobsJitter } = this.options;
    wa.maxJobs = maxJobsPerWorker > 0 && Number.isFinite(maxJobsPerWorker) ? maxJobsPerWorker + (maxJobsJitter > 0 ? randomInt(0, maxJobsJitter + 1) : 0) : Infinity;
    wa.job = null;
    wa.jobTimer = null;
    wa.recycleReason = null;
    this.workers.add(w);
    this._counters.workersStarted += 1;
    w.on('exit', (info) => this._onWorkerExit(w, info));
    w.start().then(
      (info) => this._onWorkerReady(w, info),
      (err) => this._onWorkerStartFailed(w, err),
    );
    return w;
  }

  /** @param {Worker} w @param {Record<string, any>} info */
  _onWorkerReady(w, info) {
    this._startFailures = 0;
    this._lastStartError = null;
    this._clearBackoff();
    this._everReady = true;
    if (!this.workerInfo) this.workerInfo = info;
    for (const waiter of this._readyWaiters.splice(0)) waiter.resolve();
    this.emit('ready', {
      pid: w.pid ?? null,
      model: info.model,
      threads: info.threads,
      version: info.version,
      protocol: info.protocol,
      modelsAvailable: info.models_available,
      limits: camelize(info.limits),
      rssMb: info.rss_mb,
    });
    this._pump();
  }

  /** @param {Worker} w @param {WorkerError} err */
  _onWorkerStartFailed(w, err) {
    const wa = /** @type {any} */ (w);
    if (wa.startFailureHandled) return;
    wa.startFailureHandled = true;
    // Stopped by us (close) before it was ready: not a failure.
    if (this._closing && (w._stopReason === 'shutdown' || this._forced)) return;
    this._counters.startFailures += 1;
    this._startFailures += 1;
    this._lastStartError = err;
    const delay = Math.min(this.options.maxRestartBackoffMs, this.options.restartBackoffMs * 2 ** (this._startFailures - 1));
    this._backoffUntil = Date.now() + delay;
    this._log({ level: 'error', event: 'start_failed', source: 'client', pid: w.pid, code: err.code, message: err.message, backoffMs: delay });
    if (this.listenerCount('error') > 0) this.emit('error', err);
    // Nobody can serve the queue: fail it now instead of letting it wait.
    const othersStarting = [...this.workers].some((o) => o !== w && o.state === 'starting');
    if (this._readyWorkers().length === 0 && !othersStarting) {
      for (const waiter of this._readyWaiters.splice(0)) waiter.reject(err);
      for (const job of [...this.queue]) this._settle(job, err);
    }
    this._clearBackoff();
    this._backoffTimer = setTimeout(() => {
      this._backoffTimer = null;
      this._pump();
    }, delay);
    this._backoffTimer.unref();
    this._pump();
  }

  /** @param {Worker} w @param {import('./worker').ExitInfo} info */
  _onWorkerExit(w, info) {
    const wa = /** @type {any} */ (w);
    this.workers.delete(w);
    if (wa.jobTimer) clearTimeout(wa.jobTimer);
    const unexpected = info.wasReady && !wa.recycleReason && !(this._closing && info.reason === 'shutdown');
    this.emit('exit', { pid: w.pid ?? null, code: info.code, signal: info.signal, reason: wa.recycleReason || info.reason });
    // Handle a failed start before _pump below, so that the back-off is in
    // force before a replacement could be started.
    if (!info.wasReady && w.startError) this._onWorkerStartFailed(w, w.startError);
    if (unexpected) {
      /** @type {'memory'|'timeout'|'crash'} */
      let reason = 'crash';
      if (info.reason === 'timeout') reason = 'timeout';
      else if (info.code === 75) reason = 'memory';
      this._recycled[reason] += 1;
      this._log({ level: reason === 'crash' ? 'warn' : 'info', event: 'recycle', source: 'client', pid: w.pid, reason, code: info.code, signal: info.signal });
      this.emit('recycle', { pid: w.pid ?? null, reason, code: info.code, signal: info.signal });
      if (reason === 'crash' && this.listenerCount('error') > 0) {
        const how = info.signal ? `was killed by ${info.signal}` : `exited with code ${info.code}`;
        this.emit(
          'error',
          new WorkerError(`worker pid ${w.pid} ${how}${info.reason ? ` (${info.reason})` : ''}; a new worker replaces it`, {
            code: info.reason === 'protocol_error' || info.reason === 'stdout_closed' ? 'protocol_error' : 'worker_crashed',
            workerPid: w.pid ?? null,
            exitCode: info.code,
            signal: info.signal,
          }),
        );
      }
    }
    this._pump();
  }

  /** Workers that are up and may take jobs. */
  _readyWorkers() {
    return [...this.workers].filter((w) => w.state === 'ready' && !w.retiring && !(/** @type {any} */ (w).recycleReason));
  }

  _idleWorker() {
    for (const w of this.workers) {
      const wa = /** @type {any} */ (w);
      if (w.state === 'ready' && !w.retiring && !wa.recycleReason && !wa.job && !w.busy) return w;
    }
    return null;
  }

  /** Workers that count toward `size` (starting or serving, not on their way out). */
  _liveWorkers() {
    return [...this.workers].filter((w) => (w.state === 'starting' || w.state === 'ready') && !w.retiring && !(/** @type {any} */ (w).recycleReason));
  }

  /** During a start-failure back-off with no worker alive, new jobs fail at once. */
  _failFastError() {
    if (!this._lastStartError || Date.now() >= this._backoffUntil) return null;
    if (this._liveWorkers().length > 0) return null;
    const e = this._lastStartError;
    const secs = Math.ceil((this._backoffUntil - Date.now()) / 1000);
    return new WorkerError(`${e.message} (no worker is running; the pool tries again in ${secs}s)`, {
      code: e.code,
      workerPid: e.workerPid,
    });
  }

  _clearBackoff() {
    if (this._backoffTimer) clearTimeout(this._backoffTimer);
    this._backoffTimer = null;
  }

  /** Resolves when no job is queued or running. */
  _drained() {
    if (this._isDrained()) return Promise.resolve();
    return new Promise((resolve) => this._drainWaiters.push(() => resolve()));
  }

  _isDrained() {
    if (this.queue.length > 0) return false;
    for (const job of this._inFlight) if (job.state !== 'done') return false;
    return true;
  }

  /**
   * The scheduler: hand queued jobs to idle workers, start workers up to the
   * demand, keep the event loop referenced only while there is work (`unref`).
   * Called after every state change; cheap and idempotent.
   */
  _pump() {
    if (this._pumping) {
      this._pumpAgain = true;
      return;
    }
    this._pumping = true;
    try {
      do {
        this._pumpAgain = false;
        this._pumpOnce();
      } while (this._pumpAgain);
    } finally {
      this._pumping = false;
    }
  }

  _pumpOnce() {
    while (this.queue.length > 0) {
      const w = this._idleWorker();
      if (!w) break;
      this._run(/** @type {Job} */ (this.queue.shift()), w);
    }
    this._ensureWorkers();
    if (this._isDrained() && this._drainWaiters.length) {
      for (const resolve of this._drainWaiters.splice(0)) resolve();
    }
    this._updateRefs();
  }

  _ensureWorkers() {
    if (this._forced) return;
    if (this._backoffTimer) return; // backing off after a failed start
    const busy = [...this.workers].filter((w) => /** @type {any} */ (w).job && !w.retiring).length;
    const demand = busy + this.queue.length + (this._readyWaiters.length > 0 ? 1 : 0);
    const floor = this._closing ? 0 : this.options.minWorkers;
    const want = Math.min(this.options.size, Math.max(floor, demand));
    let live = this._liveWorkers().length;
    while (live < want) {
      this._spawn();
      live += 1;
    }
  }

  _updateRefs() {
    if (!this.options.unref) return;
    // Work to do, someone awaiting ready(), or close() awaiting the exits.
    const busy = this.queue.length > 0 || this._readyWaiters.length > 0 || !this._isDrained() || this._closing;
    for (const w of this.workers) w.setRef(busy);
  }
}

/**
 * Create a pool of pyworker processes.
 * @param {Record<string, any>} [options]
 * @returns {Pool}
 */
function createPool(options) {
  return new Pool(options);
}

module.exports = { Pool, createPool, PyworkerError };
