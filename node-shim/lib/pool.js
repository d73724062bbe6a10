'use strict';

/**
 * A pool of pyworker processes: a FIFO queue of jobs, one job at a time per
 * worker, retries on a worker's death, timeouts, recycling (memory, job
 * count), idle workers stopped down to `minWorkers`, start-failure back-off,
 * draining close.
 *
 * Everything the pool knows about one worker is in its Slot (piscina /
 * generic-pool style: one record per pooled resource); the Worker object is
 * the process and the protocol, and the pool adds nothing to it.
 *
 * @module pyworker/pool
 */

const { EventEmitter } = require('node:events');
const { randomInt } = require('node:crypto');
const { Worker } = require('./worker');
const { Slot } = require('./slot');
const { StartBackoff } = require('./start-backoff');
const { EXIT, WorkerError, TimeoutError, QueueFullError, PoolClosedError, AbortError, PyworkerError } = require('./errors');
const { camelize } = require('./request-options');
const { normalizePoolOptions, workerArgs } = require('./settings');
const { workerSpawnEnv } = require('./spawn');
const { makeLogger } = require('./logger');
const { takeRequest, refuse, settleFailure, onAbort } = require('./front');
const liveness = require('./liveness');
const { resultBuffer } = require('./fallback');
const { warnMissing } = require('./capabilities');

const MiB = 1024 * 1024;

/**
 * @typedef {object} Job
 * @property {number} serial
 * @property {Buffer|null} image null once nothing can resend it
 * @property {Record<string, unknown>} wire options, snake_case
 * @property {AbortSignal|undefined} signal
 * @property {number} timeoutMs
 * @property {'throw'|'original'} fallback
 * @property {(v: any) => void} resolve
 * @property {(e: Error) => void} reject
 * @property {number} attempts
 * @property {'queued'|'running'|'done'} state
 * @property {(() => void)|null} onAbort
 */

/** @typedef {import('./slot').Phase} Phase */
/** @typedef {import('./slot').Slot<Job>} JobSlot one worker's state in the pool (lib/slot.js) */

/** @param {number} mb */
/** Crashes in a row during start that are retried at once; past it, the start-failure back-off. */
const START_CRASHES = 10;
/** Exit codes that mean "this will fail again": EX_CONFIG (a fatal frame was sent) and usage errors. */
const CONFIG_EXITS = new Set([78, 2]);

/**
 * A start that died by a signal, or exited with a code other than 78/2 without a fatal frame.
 * @param {any} err the start_failed WorkerError (a fatal frame's error carries its own code)
 */
function isStartCrash(err) {
  if (!err || err.code !== 'start_failed') return false;
  if (err.signal) return true;
  return typeof err.exitCode === 'number' && !CONFIG_EXITS.has(err.exitCode);
}

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

    /** @type {Set<JobSlot>} one per worker process, until it exits */
    this.slots = new Set();
    /** @type {Job[]} */
    this.queue = [];
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
    /** @type {Record<string, any>|null} the first ready frame, for limits */
    this.workerInfo = null;
    /** Failed starts and their back-off (start-backoff.js). */
    this._backoff = new StartBackoff(this.options, START_CRASHES, () => this._pump());
    this._pumping = false;
    this._pumpAgain = false;
    // Spelled out (not built from a list of names): stats() and its type keep every counter's name.
    this._counters = { submitted: 0, completed: 0, failed: 0, retried: 0, timedOut: 0, aborted: 0, fallbacks: 0, queueFull: 0, workersStarted: 0, startFailures: 0, startCrashes: 0, frozen: 0 };
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
    if (this._inPhase('idle', 'busy').length > 0) return Promise.resolve();
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
    return this._submit(image, options).then(resultBuffer);
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
    const workers = [...this.slots].map(({ worker: w, phase, maxJobs }) => {
      const s = w.lastStats || {};
      return {
        pid: w.pid ?? null,
        state: phase,
        jobs: w.jobs,
        rssMb: typeof s.rss_mb === 'number' ? s.rss_mb : null,
        peakRssMb: typeof s.peak_rss_mb === 'number' ? s.peak_rss_mb : null,
        model: w.info ? w.info.model : null,
        threads: w.info ? w.info.threads : null,
        uptimeMs: now - w.startedAt,
        maxJobs: Number.isFinite(maxJobs) ? maxJobs : null,
      };
    });
    return {
      size: this.options.size,
      threads: this.options.threads,
      closing: this._closing,
      ready: workers.some((w) => w.state === 'idle' || w.state === 'busy'),
      queued: this.queue.length,
      running: [...this.slots].filter((s) => s.job).length,
      maxQueue: this.options.maxQueue,
      maxQueueBytes: this.options.maxQueueBytes,
      memoryLimitMb: this.options.memoryLimitMb,
      workers,
      totalRssMb: Math.round(workers.reduce((a, w) => a + (w.rssMb || 0), 0) * 10) / 10,
      ...this._counters,
      recycled: { ...this._recycled },
      lastStartError: this._backoff.lastError ? { code: this._backoff.lastError.code, message: this._backoff.lastError.message } : null,
      backoffMs: this._backoff.remainingMs(),
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
    if (opts.force) this._forceClose('the pool was closed with {force: true}; the job was cancelled');
    if (!this._closePromise) {
      // One deadline for the whole close: jobs get until then to finish, workers what is left to exit,
      // then SIGKILL. A frozen worker, or jobTimeoutMs: Infinity, cannot keep close() pending.
      const deadline = Date.now() + this.options.closeTimeoutMs;
      this._closePromise = (async () => {
        let timer;
        const late = new Promise((resolve) => {
          timer = setTimeout(resolve, this.options.closeTimeoutMs);
          timer.unref();
        });
        await Promise.race([this._drained(), late]);
        clearTimeout(timer);
        if (!this._isDrained()) {
          this._log({ level: 'warn', event: 'close_timeout', source: 'client', closeTimeoutMs: this.options.closeTimeoutMs });
          this._forceClose(`the pool was closed and the job did not finish within closeTimeoutMs (${this.options.closeTimeoutMs} ms)`);
        }
        this._backoff.clear();
        while (this.slots.size > 0) {
          const graceMs = Math.max(0, deadline - Date.now());
          await Promise.all([...this.slots].map((slot) => this._stop(slot, graceMs)));
        }
        this._log({ level: 'debug', event: 'pool_closed', source: 'client' });
      })();
    }
    this._pump();
    return this._closePromise;
  }

  /** Reject what is queued or running with PoolClosedError and SIGKILL every worker. @param {string} why */
  _forceClose(why) {
    if (this._forced) return;
    this._forced = true;
    const err = new PoolClosedError(why);
    for (const job of this.queue.splice(0)) this._settle(job, err);
    for (const slot of this.slots) {
      if (slot.job) this._settle(slot.job, err);
      slot.retire();
      slot.worker.kill('SIGKILL', 'shutdown');
    }
  }

  /**
   * Urgent pings while `job` runs on `slot` (liveness.js): no pong within pingTimeoutMs, the worker cannot
   * run at all; it is killed, and its job retried as a crash. @param {JobSlot} slot @param {Job} job
   */
  _armPing(slot, job) {
    const ms = this.options.pingTimeoutMs;
    liveness.pingWhileBusy(slot, job, ms, () => this._nextId++, (waitedMs) => this._onFrozen(slot, 'unresponsive', { pingTimeoutMs: ms, waitedMs }));
  }

  /**
   * Kill a worker that cannot run (no pong, or stopped per /proc): its request fails as a crash and is retried.
   * @param {JobSlot} slot @param {'unresponsive'|'frozen'} reason @param {Record<string, unknown>} details
   */
  _onFrozen(slot, reason, details) {
    this._counters.frozen += 1;
    this._log({ level: 'warn', event: 'worker_unresponsive', source: 'client', pid: slot.worker.pid, reason, job: slot.job ? slot.job.serial : null, ...details });
    slot.retire();
    slot.worker.kill('SIGKILL', reason);
  }

  // -------------------------------------------------------------------------
  // Jobs

  /**
   * @param {unknown} image
   * @param {Record<string, any>|undefined} options
   * @returns {Promise<any>}
   */
  _submit(image, options) {
    let buf, parsed;
    try {
      ({ buf, parsed } = takeRequest(image, options, this.workerInfo && this.workerInfo.limits));
    } catch (err) {
      return Promise.reject(err);
    }
    const fallback = parsed.fallback || this.options.fallback;
    /** @param {Error} err */
    const refused = (err) => refuse(fallback, buf, err, (e) => this._onFallback(e));

    if (this._closing) return Promise.reject(new PoolClosedError());
    if (parsed.signal && parsed.signal.aborted) {
      this._counters.aborted += 1;
      return Promise.reject(new AbortError(parsed.signal.reason));
    }
    const limits = this.workerInfo && this.workerInfo.limits;
    if (limits && typeof limits.max_input_mb === 'number' && buf.length > limits.max_input_mb * MiB) {
      return refused(
        new WorkerError(`File size (${fmtMb(buf.length / MiB)}) exceeds maximum (${fmtMb(limits.max_input_mb)})`, {
          code: 'input_too_large',
        }),
      );
    }
    const startError = this._failFastError();
    if (startError) return refused(startError);
    if (this.queue.length >= this.options.maxQueue && this._inPhase('idle').length === 0) {
      this._counters.queueFull += 1;
      return refused(
        new QueueFullError(`queue is full (maxQueue=${this.options.maxQueue}); retry later or raise maxQueue`, {
          maxQueue: this.options.maxQueue,
        }),
      );
    }
    // Bytes, not only jobs: 50 waiting 10 MiB uploads are 500 MiB of Buffers. A first waiting job is always taken.
    const queuedBytes = this.queue.reduce((n, j) => n + (j.image ? j.image.length : 0), 0);
    if (this.queue.length > 0 && queuedBytes + buf.length > this.options.maxQueueBytes && this._inPhase('idle').length === 0) {
      this._counters.queueFull += 1;
      return refused(
        new QueueFullError(
          `queue is full: ${fmtMb(queuedBytes / MiB)} of images wait, and this ${fmtMb(buf.length / MiB)} one would pass ` +
            `maxQueueBytes (${fmtMb(this.options.maxQueueBytes / MiB)}); retry later or raise maxQueueBytes`,
          { maxQueue: this.options.maxQueue, maxQueueBytes: this.options.maxQueueBytes },
        ),
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
        onAbort: null,
      };
      if (job.signal) job.onAbort = onAbort(job.signal, (reason) => this._abort(job, reason)); // the un-watch function
      this.queue.push(job);
      this._pump();
    });
  }

  /** A request answered with its own input (`fallback: 'original'`). @param {Error} error */
  _onFallback(error) {
    this._counters.fallbacks += 1;
    const code = error instanceof PyworkerError ? error.code : undefined;
    this._log({ level: 'warn', event: 'fallback', source: 'client', code, message: error.message });
  }

  /**
   * Settle a job once: resolve with a result, or reject (or fall back).
   * @param {Job} job
   * @param {Error|null} err
   * @param {any} [result]
   */
  _settle(job, err, result) {
    if (job.state === 'done') return;
    if (job.state === 'queued') {
      const i = this.queue.indexOf(job);
      if (i >= 0) this.queue.splice(i, 1);
    }
    job.state = 'done';
    if (job.onAbort) job.onAbort();
    job.onAbort = null;
    const input = job.image;
    job.image = null; // let the input go once nothing can resend it
    if (!err) {
      this._counters.completed += 1;
      job.resolve(result);
    } else {
      this._counters.failed += 1;
      settleFailure(job.fallback, input, err, job, (e) => this._onFallback(e));
    }
    this._pump();
  }

  /** @param {Job} job @param {unknown} reason */
  _abort(job, reason) {
    if (job.state === 'done') return;
    this._counters.aborted += 1;
    if (job.state === 'running') {
      // Its worker is killed and replaced (piscina does the same): the caller is gone, and finishing
      // the job would hold a worker for nobody, for as long as the slowest input takes.
      for (const slot of this.slots) {
        if (slot.job !== job) continue;
        this._log({ level: 'info', event: 'abort_kill', source: 'client', pid: slot.worker.pid, job: job.serial });
        slot.retire('aborted');
        slot.worker.kill('SIGKILL', 'aborted');
      }
    }
    this._settle(job, new AbortError(reason));
  }

  /** @param {Job} job @param {JobSlot} slot */
  _run(job, slot) {
    const w = slot.worker;
    job.state = 'running';
    job.attempts += 1;
    slot.take(job);
    const timeoutMs = job.timeoutMs;
    if (Number.isFinite(timeoutMs)) slot.timer = setTimeout(() => this._onJobTimeout(slot, job, timeoutMs), timeoutMs);
    this._armPing(slot, job);
    /** @type {Record<string, unknown> & {id: number, op: string}} */
    const msg = { id: this._nextId++, op: 'remove', image: job.image };
    if (Object.keys(job.wire).length) msg.options = job.wire;
    w.request(msg).then(
      (reply) => this._onReply(slot, job, reply),
      (err) => this._onRequestFailed(slot, job, err),
    );
  }

  /** The slot's request settled: it is idle again, unless it is on its way out (or gone). @param {JobSlot} slot */
  _release(slot) {
    if (slot.release()) this.slots.delete(slot);
  }

  /** @param {JobSlot} slot @param {Job} job @param {Record<string, any>} reply */
  _onReply(slot, job, reply) {
    const w = slot.worker;
    this._release(slot);
    this._checkRecycle(slot, reply.stats || {});
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
        const code = typeof e.code === 'string' ? e.code : 'internal';
        this._settle(job, new WorkerError(String(e.message || 'the worker reported an error'), { code, workerPid: w.pid ?? null }));
      }
    }
    this._pump();
  }

  /** @param {JobSlot} slot @param {Job} job @param {Error} err */
  _onRequestFailed(slot, job, err) {
    this._release(slot);
    if (job.state === 'done') {
      this._pump();
      return;
    }
    if (!(err instanceof WorkerError && err.retriable)) {
      this._settle(job, err);
    } else if (job.attempts <= this.options.retries && !this._forced) {
      this._counters.retried += 1;
      this._log({ level: 'warn', event: 'retry', source: 'client', job: job.serial, attempt: job.attempts + 1, pid: slot.worker.pid, reason: err.code, message: err.message });
      job.state = 'queued';
      this.queue.unshift(job);
      this._pump();
    } else {
      const tries = job.attempts === 1 ? '1 attempt' : `${job.attempts} attempts`;
      const final = new WorkerError(`${err.message} (gave up after ${tries}; retries=${this.options.retries})`, {
        code: err.code,
        workerPid: err.workerPid,
        retriable: true,
        exitCode: err.exitCode,
        signal: err.signal,
        attempts: job.attempts,
        cause: err.cause,
      });
      this._settle(job, final);
    }
  }

  /** @param {JobSlot} slot @param {Job} job @param {number} timeoutMs */
  _onJobTimeout(slot, job, timeoutMs) {
    slot.timer = null;
    if (slot.job !== job) return;
    const w = slot.worker;
    if (w.pid && liveness.isStopped(w.pid)) {
      // Stopped, not slow (a jobTimeoutMs shorter than pingTimeoutMs): the job never ran. Killing it
      // makes this a crash, and the job is retried.
      this._onFrozen(slot, 'frozen', { timeoutMs });
      return;
    }
    this._counters.timedOut += 1;
    this._log({ level: 'warn', event: 'job_timeout', source: 'client', pid: w.pid, job: job.serial, timeoutMs });
    slot.retire();
    w.kill('SIGKILL', 'timeout');
    this._settle(
      job,
      new TimeoutError(
        `the job took longer than ${timeoutMs} ms (jobTimeoutMs) on worker pid ${w.pid}; the worker was killed and replaced. ` +
          'Send a smaller image, a smaller maxSize, or raise jobTimeoutMs',
        { timeoutMs, workerPid: w.pid ?? null },
      ),
    );
  }

  // -------------------------------------------------------------------------
  // Workers

  /** @param {...Phase} phases */
  _inPhase(...phases) {
    return [...this.slots].filter((s) => phases.includes(s.phase));
  }


  /** Stop a slot's worker gracefully (shutdown, then SIGKILL after graceMs). @param {JobSlot} slot @param {number} [graceMs] */
  _stop(slot, graceMs = this.options.closeTimeoutMs) {
    slot.retire();
    if (this._forced) {
      slot.worker.kill('SIGKILL', 'shutdown');
      return slot.worker.exited;
    }
    // A worker that said `retiring` exits 75 by itself; stop() then only closes its stdin.
    return slot.worker.stop({ graceMs, id: this._nextId++ });
  }

  /** After a reply: recycle its worker when it is due (Slot.recycleReason). @param {JobSlot} slot @param {Record<string, any>} stats */
  _checkRecycle(slot, stats) {
    const reason = slot.recycleReason(stats, this.options.memoryLimitMb);
    if (reason) this._recycle(slot, reason, stats);
  }

  /**
   * Its worker said `retiring` in a reply (it exits 75 by itself): recycled for 'memory', before the reply
   * settles, unless the pool is stopping it already. @param {JobSlot} slot @param {Record<string, any>} stats
   */
  _onRetiring(slot, stats) {
    if (slot.serving) this._recycle(slot, 'memory', stats);
  }

  /** @param {JobSlot} slot @param {'memory'|'jobs'} reason @param {Record<string, any>} stats the last reply's */
  _recycle(slot, reason, stats) {
    const w = slot.worker;
    const details = { rssMb: stats.rss_mb ?? null, jobs: w.jobs };
    this._recycled[reason] += 1;
    this._log({ level: 'info', event: 'recycle', source: 'client', pid: w.pid, reason, ...details });
    this.emit('recycle', { pid: w.pid ?? null, reason, ...details });
    slot.retire(reason);
    this._stop(slot); // _pump starts its replacement
  }

  /** Idle above minWorkers for idleTimeoutMs: stop it. @param {JobSlot} slot */
  _armIdleTimer(slot) {
    const ms = this.options.idleTimeoutMs;
    if (slot.phase !== 'idle' || slot.timer || !Number.isFinite(ms)) return;
    if (this._inPhase('starting', 'idle', 'busy').length <= this.options.minWorkers) return;
    slot.timer = setTimeout(() => {
      slot.timer = null;
      if (slot.phase !== 'idle' || this._inPhase('starting', 'idle', 'busy').length <= this.options.minWorkers) return;
      slot.retire('idle');
      this._log({ level: 'info', event: 'idle_stop', source: 'client', pid: slot.worker.pid, idleTimeoutMs: ms });
      this._stop(slot);
      this._pump();
    }, ms);
    slot.timer.unref();
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
    const { maxJobsPerWorker: max, maxJobsJitter: jitter } = this.options;
    /** @type {JobSlot} */
    const slot = new Slot(w, max > 0 && Number.isFinite(max) ? max + (jitter > 0 ? randomInt(0, jitter + 1) : 0) : Infinity);
    this.slots.add(slot);
    this._counters.workersStarted += 1;
    // The Worker's facts, as they happen, move the one state (lib/slot.js).
    w.on('stopping', () => slot.retire());
    w.on('retiring', (stats) => this._onRetiring(slot, stats));
    w.on('exit', (info) => this._onWorkerExit(slot, info));
    w.start().then(
      (info) => this._onWorkerReady(slot, info),
      (err) => this._onWorkerStartFailed(slot, err),
    );
  }

  /** @param {JobSlot} slot @param {Record<string, any>} info */
  _onWorkerReady(slot, info) {
    slot.ready();
    this._backoff.ready();
    if (!this.workerInfo) {
      this.workerInfo = info;
      warnMissing(info, this._log);
    }
    const limit = this.options.memoryLimitMb;
    if (limit !== null && typeof info.rss_mb === 'number' && info.rss_mb >= limit && !this._warnedMemoryLimit) {
      // Every job would end above the limit: each worker would be recycled after one job, silently.
      this._warnedMemoryLimit = true;
      this._log({
        level: 'warn',
        event: 'memory_limit_below_idle',
        source: 'client',
        pid: slot.worker.pid,
        rssMb: info.rss_mb,
        memoryLimitMb: limit,
        message: `memoryLimitMb (${limit}) is below a worker's idle RSS (${info.rss_mb} MB): every job will recycle its worker; raise it above ~${Math.ceil(info.rss_mb + 200)}`,
      });
    }
    for (const waiter of this._readyWaiters.splice(0)) waiter.resolve();
    this.emit('ready', {
      pid: slot.worker.pid ?? null,
      model: info.model,
      threads: info.threads,
      version: info.version,
      protocol: info.protocol,
      modelsAvailable: info.models_available,
      capabilities: info.capabilities,
      missing: info.missing,
      limits: camelize(info.limits),
      rssMb: info.rss_mb,
    });
    this._pump();
  }

  /** @param {JobSlot} slot @param {WorkerError} err */
  _onWorkerStartFailed(slot, err) {
    if (slot.startHandled) return;
    slot.startHandled = true;
    slot.retire();
    const w = slot.worker;
    // Stopped by us (close) before it was ready: not a failure.
    if (this._closing && (w.stopReason === 'shutdown' || this._forced)) return;
    // Killed (a signal: the OOM killer, an operator) or exited without a fatal frame while loading: a crash,
    // not a misconfiguration. Start a replacement at once; the queue waits for it. Only a fatal frame, exit
    // 78/2, a spawn error or a start timeout back off and fail the queue, or START_CRASHES crashes in a row.
    if (isStartCrash(err) && this._backoff.crashed()) {
      this._counters.startCrashes += 1;
      this._log({ level: 'warn', event: 'start_crash', source: 'client', pid: w.pid, exitCode: /** @type {any} */ (err).exitCode, signal: /** @type {any} */ (err).signal, inARow: this._backoff.crashes });
      this._pump();
      return;
    }
    this._counters.startFailures += 1;
    const delay = this._backoff.failed(err);
    this._log({ level: 'error', event: 'start_failed', source: 'client', pid: w.pid, code: err.code, message: err.message, backoffMs: delay });
    if (this.listenerCount('error') > 0) this.emit('error', err);
    // Nobody can serve the queue: fail it now instead of letting it wait.
    if (this._inPhase('starting', 'idle', 'busy').length === 0) {
      for (const waiter of this._readyWaiters.splice(0)) waiter.reject(err);
      for (const job of [...this.queue]) this._settle(job, err);
    }
    this._backoff.arm();
    this._pump();
  }

  /** @param {JobSlot} slot @param {import('./worker').ExitInfo} info */
  _onWorkerExit(slot, info) {
    const w = slot.worker;
    // Its request is rejected right after this event: the slot stays until then, so that close() waits for the retry.
    if (slot.exited()) this.slots.delete(slot);
    const unexpected = info.wasReady && !slot.stopReason && !(this._closing && info.reason === 'shutdown');
    this.emit('exit', { pid: w.pid ?? null, code: info.code, signal: info.signal, reason: slot.stopReason || info.reason });
    // Handle a failed start before _pump below, so that the back-off is in
    // force before a replacement could be started.
    if (!info.wasReady && w.startError) this._onWorkerStartFailed(slot, w.startError);
    if (unexpected) {
      /** @type {'memory'|'timeout'|'crash'} */
      let reason = 'crash';
      if (info.reason === 'timeout') reason = 'timeout';
      else if (info.code === EXIT.retired) reason = 'memory';
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

  /** During a start-failure back-off with no worker alive, new jobs fail at once. */
  _failFastError() {
    const e = this._backoff.lastError;
    const left = this._backoff.remainingMs();
    if (!e || left <= 0) return null;
    if (this._inPhase('starting', 'idle', 'busy').length > 0) return null;
    const secs = Math.ceil(left / 1000);
    return new WorkerError(`${e.message} (no worker is running; the pool tries again in ${secs}s)`, {
      code: e.code,
      workerPid: e.workerPid,
    });
  }

  /** Resolves when no job is queued or running. */
  _drained() {
    if (this._isDrained()) return Promise.resolve();
    return new Promise((/** @type {(v?: void) => void} */ resolve) => this._drainWaiters.push(() => resolve()));
  }

  _isDrained() {
    return this.queue.length === 0 && ![...this.slots].some((s) => s.job && s.job.state !== 'done');
  }

  /**
   * The scheduler: hand queued jobs to idle workers, start workers up to the
   * demand, arm idle timers, keep the event loop referenced only while there
   * is work (`unref`). Called after every state change; cheap and idempotent.
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
    for (const slot of this._inPhase('idle')) {
      if (this.queue.length === 0) break;
      this._run(/** @type {Job} */ (this.queue.shift()), slot);
    }
    this._ensureWorkers();
    if (!this._closing) for (const slot of this._inPhase('idle')) this._armIdleTimer(slot);
    if (this._isDrained() && this._drainWaiters.length) {
      for (const resolve of this._drainWaiters.splice(0)) resolve();
    }
    this._updateRefs();
  }

  _ensureWorkers() {
    if (this._forced) return;
    if (this._backoff.active) return; // backing off after a failed start
    const demand = this._inPhase('busy').length + this.queue.length + (this._readyWaiters.length > 0 ? 1 : 0);
    const floor = this._closing ? 0 : this.options.minWorkers;
    const want = Math.min(this.options.size, Math.max(floor, demand));
    for (let live = this._inPhase('starting', 'idle', 'busy').length; live < want; live += 1) this._spawn();
  }

  _updateRefs() {
    if (!this.options.unref) return;
    // Work to do, someone awaiting ready(), or close() awaiting the exits.
    const busy = this.queue.length > 0 || this._readyWaiters.length > 0 || !this._isDrained() || this._closing;
    for (const slot of this.slots) slot.worker.setRef(busy);
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
