'use strict';

/**
 * Is a worker process stopped? The pool's urgent pings find a worker that cannot run on every
 * platform (pool.js _armPing); this is the Linux-only second look when a job times out before a
 * ping deadline (a jobTimeoutMs shorter than pingTimeoutMs): a worker stopped by SIGSTOP (or a
 * debugger) has /proc/PID/stat state T (stopped) or t (traced), and its job's timeout must not
 * blame the image. Elsewhere this knows nothing.
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

module.exports = { isStopped };
