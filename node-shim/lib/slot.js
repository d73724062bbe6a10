'use strict';

/**
 * The pool's one state machine for a worker process (generic-pool's PooledResource): its phase, the job it
 * holds, its timers and why the pool stopped it. Every phase change is a method here, so the rules live in
 * one place; the pool, liveness and /health read the phase and nothing else of the process's state. The
 * Worker (lib/worker.js) only reports facts about its process as they happen (ready, `retiring` said,
 * stopping, exited) and the pool calls the transition that follows; no transition reads the Worker.
 *
 *   starting --ready()--> idle --take(job)--> busy --release()--> idle
 *   any but gone --retire(reason?)--> retiring (the pool stops it, or its Worker said 'stopping' or
 *                                               'retiring'; a busy slot keeps its job until release())
 *   any --exited()--> gone
 *
 * starting: spawned, no `ready` yet; idle / busy: serving; retiring: on its way out (recycled, timed out,
 * stopped idle, aborted, closing, or said `retiring`), takes no job; gone: exited (kept in the pool only
 * until the request it held is settled, so that close() waits for its retry).
 *
 * @module pyworker-cutout/slot
 */

/** @typedef {'starting'|'idle'|'busy'|'retiring'|'gone'} Phase */
/** @typedef {'memory'|'jobs'|'idle'|'aborted'} StopReason */

/** @template [J=unknown] */
class Slot {
  /**
   * @param {import('./worker').Worker} worker
   * @param {number} maxJobs jobs before a recycle (Infinity: never)
   */
  constructor(worker, maxJobs) {
    this.worker = worker;
    /** @type {Phase} */
    this.phase = 'starting';
    /** @type {J|null} the job sent to it, until its request settles */
    this.job = null;
    /** @type {NodeJS.Timeout|null} the job's timeout while busy, the idle timeout while idle */
    this.timer = null;
    /** @type {NodeJS.Timeout|null} while busy: the next urgent ping, or the deadline of the one in flight */
    this.pingTimer = null;
    this.maxJobs = maxJobs;
    /** @type {StopReason|null} why the pool stopped it, when it did */
    this.stopReason = null;
    /** its failed start was counted */
    this.startHandled = false;
  }

  /** Idle or busy: it counts as a serving worker. */
  get serving() {
    return this.phase === 'idle' || this.phase === 'busy';
  }

  /** The worker said `ready`. */
  ready() {
    if (this.phase === 'starting') this.phase = 'idle';
  }

  /** A job is sent to it. @param {J} job */
  take(job) {
    this.clearTimers();
    this.phase = 'busy';
    this.job = job;
  }

  /**
   * Its request settled: idle again, unless it was retired meanwhile (its worker is on its way out).
   * @returns {boolean} it is gone: the pool forgets it now
   */
  release() {
    this.clearTimers();
    this.job = null;
    if (this.phase === 'busy') this.phase = 'idle';
    return this.phase === 'gone';
  }

  /** Out of service; it no longer counts toward `size`. @param {StopReason} [reason] why the pool stops it */
  retire(reason) {
    this.clearTimers();
    if (reason) this.stopReason = reason;
    if (this.phase !== 'gone') this.phase = 'retiring';
  }

  /** Its process exited. @returns {boolean} it holds no job: the pool forgets it now */
  exited() {
    this.clearTimers();
    this.phase = 'gone';
    return !this.job;
  }

  /**
   * After a reply, back in `idle`: is its worker due for a recycle? 'memory': the reply's RSS is above
   * `memoryLimitMb`; 'jobs': it ran its `maxJobs`; null: not due. (A worker that said `retiring` is
   * recycled for 'memory' when it says so.)
   * @param {{rss_mb?: unknown}} stats the reply's figures @param {number|null} memoryLimitMb
   * @returns {'memory'|'jobs'|null}
   */
  recycleReason(stats, memoryLimitMb) {
    if (this.phase !== 'idle') return null;
    if (memoryLimitMb !== null && typeof stats.rss_mb === 'number' && stats.rss_mb > memoryLimitMb) return 'memory';
    if (this.worker.jobs >= this.maxJobs) return 'jobs';
    return null;
  }

  clearTimers() {
    if (this.timer) clearTimeout(this.timer);
    if (this.pingTimer) clearTimeout(this.pingTimer);
    this.timer = null;
    this.pingTimer = null;
  }
}

module.exports = { Slot };
