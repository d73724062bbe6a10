'use strict';

/**
 * The pool's back-off after failed starts, a duty of its own (as bullmq's worker hands its locks to a
 * LockManager). A start that fails for a reason that will come again (a fatal frame, exit 78/2, a spawn
 * error, a start timeout) backs off restartBackoffMs, doubling up to maxRestartBackoffMs; meanwhile no
 * worker is started and, with none alive, new jobs fail at once. A start that crashed (killed while
 * loading: the OOM killer, an operator) is retried at once, up to `maxCrashes` in a row. A worker that
 * becomes ready ends all of it.
 *
 * @module pyworker-cutout/start-backoff
 */

class StartBackoff {
  /**
   * @param {{restartBackoffMs: number, maxRestartBackoffMs: number}} options
   * @param {number} maxCrashes start crashes in a row retried at once
   * @param {() => void} onEnd the back-off is over: time to start workers again
   */
  constructor(options, maxCrashes, onEnd) {
    this.options = options;
    this.maxCrashes = maxCrashes;
    this.onEnd = onEnd;
    /** failed starts in a row (reset by a ready worker) */
    this.failures = 0;
    /** workers in a row that crashed while starting (reset by a ready worker or a failed start) */
    this.crashes = 0;
    /** @type {import('./errors').WorkerError|null} */
    this.lastError = null;
    this.until = 0;
    this.delay = 0;
    /** @type {NodeJS.Timeout|null} */
    this.timer = null;
  }

  /** Backing off: no worker is started. */
  get active() {
    return this.timer !== null;
  }

  /** A worker is ready: every count and the back-off end. */
  ready() {
    this.failures = 0;
    this.crashes = 0;
    this.lastError = null;
    this.clear();
  }

  /** A start crashed. @returns {boolean} retry at once (else it counts as a failed start) */
  crashed() {
    if (this.crashes >= this.maxCrashes) return false;
    this.crashes += 1;
    return true;
  }

  /** A start failed: returns how long to back off (arm() starts it). @param {import('./errors').WorkerError} err */
  failed(err) {
    this.crashes = 0;
    this.failures += 1;
    this.lastError = err;
    const delay = Math.min(this.options.maxRestartBackoffMs, this.options.restartBackoffMs * 2 ** (this.failures - 1));
    this.until = Date.now() + delay;
    this.delay = delay;
    return delay;
  }

  /** Starts the back-off failed() measured. */
  arm() {
    this.clear();
    this.timer = setTimeout(() => {
      this.timer = null;
      this.onEnd();
    }, this.delay);
    this.timer.unref();
  }

  /** Milliseconds of back-off left (0: none). */
  remainingMs() {
    return Math.max(0, this.until - Date.now());
  }

  clear() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

module.exports = { StartBackoff };
