'use strict';

/**
 * Can a busy worker still run? The pool delegates both looks here:
 *
 * - pingWhileBusy: an urgent ping every pingTimeoutMs / 2 while a job runs, which the worker's stdin
 *   thread answers even mid-job (docs/protocol.md#ping). No pong within pingTimeoutMs: the process
 *   cannot run at all (stopped, or stuck in native code holding the GIL), so its job is not what is
 *   slow; the pool kills it, which makes the job a crash, retried, never a timeout blaming the image.
 * - isStopped: the Linux-only second look when a job times out before a ping deadline (a jobTimeoutMs
 *   shorter than pingTimeoutMs): a worker stopped by SIGSTOP (or a debugger) has /proc/PID/stat state
 *   T (stopped) or t (traced). Elsewhere it knows nothing.
 */

const fs = require('node:fs');

/**
 * @param {number} pid
 * @returns {boolean|null} true: stopped; false: running or sleeping; null: unknown (not Linux, or gone)
 */
function isStopped(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // "pid (comm) state ...": comm may hold spaces and parentheses, so read after the last ')'.
  const state = text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3);
  return state === 'T' || state === 't';
}

/**
 * Urgent pings while `slot` holds `job`, until it holds another or its worker is not ready. The timer in
 * flight (the next ping, or the deadline of the one sent) is kept in `slot.pingTimer`, which the slot
 * clears on its transitions.
 * @param {import('./slot').Slot<unknown>} slot
 * @param {unknown} job
 * @param {number} ms pingTimeoutMs (not finite: no pings)
 * @param {() => number} nextId a request id for each ping
 * @param {(waitedMs: number) => void} onSilent no pong within `ms`: called once, while `slot` still holds `job`
 */
function pingWhileBusy(slot, job, ms, nextId, onSilent) {
  if (!Number.isFinite(ms) || slot.job !== job) return;
  slot.pingTimer = setTimeout(() => {
    slot.pingTimer = null;
    if (slot.job !== job || slot.phase !== 'busy') return;
    const sentAt = Date.now();
    const deadline = setTimeout(() => {
      slot.pingTimer = null;
      if (slot.job === job) onSilent(Date.now() - sentAt);
    }, ms);
    slot.pingTimer = deadline;
    slot.worker.ping(nextId()).then(
      () => {
        clearTimeout(deadline);
        if (slot.pingTimer === deadline) {
          slot.pingTimer = null;
          pingWhileBusy(slot, job, ms, nextId, onSilent);
        }
      },
      () => clearTimeout(deadline), // the worker died: its exit is handled by the pool
    );
  }, Math.max(1, Math.floor(ms / 2)));
}

module.exports = { isStopped, pingWhileBusy };
