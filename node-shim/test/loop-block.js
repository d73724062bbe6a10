'use strict';

// How long the event loop ran without coming back to a timer, in CPU time of the main thread (utime +
// stime of /proc/self/task/PID/stat). A wall-clock gap also counts the time a loaded machine gave the
// process no CPU at all: at load 9 on 2 cores a loop that never blocks shows 1 s gaps. CPU time is what
// a blocking call costs, whatever the load. Resolution: the kernel's clock tick (10 ms).

const fs = require('node:fs');

const STAT = `/proc/self/task/${process.pid}/stat`; // the main thread only: worker threads' inflating is off the loop
const MS_PER_TICK = 10; // USER_HZ is 100 on Linux

/** CPU milliseconds the main thread has used so far. */
function mainThreadCpuMs() {
  const stat = fs.readFileSync(STAT, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
  return (Number(fields[11]) + Number(fields[12])) * MS_PER_TICK; // fields 14 and 15: utime, stime
}

/**
 * Starts watching; returns {maxBlockMs(), reset(), stop()}. maxBlockMs: the most CPU the main thread spent
 * between two turns of a `everyMs` timer (including the one still running when it is read).
 */
function watchLoopBlock(everyMs = 10) {
  let max = 0;
  let last = mainThreadCpuMs();
  const timer = setInterval(() => {
    const now = mainThreadCpuMs();
    max = Math.max(max, now - last);
    last = now;
  }, everyMs);
  timer.unref();
  return {
    maxBlockMs: () => Math.max(max, mainThreadCpuMs() - last),
    /** Count from now on (a benchmark's next row). */
    reset: () => {
      max = 0;
      last = mainThreadCpuMs();
    },
    stop: () => clearInterval(timer),
  };
}

module.exports = { watchLoopBlock, mainThreadCpuMs };
