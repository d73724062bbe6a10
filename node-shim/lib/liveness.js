'use strict';

/**
 * Is a worker process frozen? A worker stopped by SIGSTOP (or a debugger) answers nothing, and
 * its job's timeout would blame the image. On Linux the kernel says so: /proc/PID/stat's state is
 * T (stopped) or t (traced). Elsewhere this knows nothing and the job timeout stays the guard.
 */

const fs = require('node:fs');

/** How often the pool looks, and how long a worker may stay stopped before it is replaced. */
const CHECK_MS = 1000;
const FROZEN_AFTER_MS = 3000;

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

module.exports = { CHECK_MS, FROZEN_AFTER_MS, isStopped };
