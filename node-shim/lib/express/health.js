'use strict';

/**
 * GET /health: the pool's counters and each worker's memory as the kernel
 * sees it (VmRSS and VmHWM from /proc/<pid>/status), not as last reported in
 * a reply: a worker's own figure is taken after its job and can miss the peak.
 *
 * status: STARTING while the first workers start (HTTP 200: the app is fine,
 * requests wait in the queue); OK; WARNING (a ready worker above warnMb, the
 * queue 3/4 full, or a capability this install lacks: `reasons` names each with
 * its fix); CRITICAL (a ready worker above criticalMb, or workers failing to
 * start: HTTP 503).
 *
 * @module pyworker-cutout/express/health
 */

const fs = require('node:fs');

const KIB_PER_MIB = 1024;

/**
 * VmRSS and VmHWM of a process in MiB (one decimal), or null where /proc is not there.
 * @param {number} pid
 * @returns {{rssMb: number, peakRssMb: number}|null}
 */
function procMemory(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  /** @param {string} key */
  const kb = (key) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Math.round((Number(m[1]) / KIB_PER_MIB) * 10) / 10 : null;
  };
  const rssMb = kb('VmRSS');
  const peakRssMb = kb('VmHWM');
  return rssMb === null || peakRssMb === null ? null : { rssMb, peakRssMb };
}

const READY = new Set(['idle', 'busy']);

/**
 * @param {import('../pool').Pool} pool
 * @param {{warnMb: number, criticalMb: number}} thresholds
 */
function health(pool, { warnMb, criticalMb }) {
  const s = pool.stats();
  const workers = s.workers
    .filter((w) => w.pid !== null && w.state !== 'gone') // 'gone': exited, its request not yet settled
    .map((w) => {
      const mem = procMemory(/** @type {number} */ (w.pid));
      return {
        pid: w.pid,
        state: w.state,
        jobs: w.jobs,
        // The worker's own last figures where /proc cannot be read (not Linux).
        rssMb: mem ? mem.rssMb : w.rssMb,
        peakRssMb: mem ? mem.peakRssMb : w.peakRssMb,
        source: mem ? 'proc' : 'worker',
      };
    });
  const ready = workers.filter((w) => READY.has(w.state));
  const maxRss = Math.max(0, ...ready.map((w) => w.rssMb || 0));

  /** @type {string[]} */
  const reasons = [];
  let status = 'OK';
  if (maxRss >= warnMb) reasons.push(`a worker uses ${maxRss} MB (warning at ${warnMb} MB)`);
  if (Number.isFinite(s.maxQueue) && s.maxQueue > 0 && s.queued >= 0.75 * s.maxQueue) reasons.push(`queue ${s.queued}/${s.maxQueue}`);
  // A part this install lacks (docs/protocol.md#capabilities): the instance serves, but not everything.
  const info = pool.workerInfo;
  const missing = (info && info.missing) || {};
  for (const [name, why] of Object.entries(missing)) reasons.push(`${name} unavailable: ${why}`);
  if (reasons.length) status = 'WARNING';
  if (maxRss >= criticalMb) {
    status = 'CRITICAL';
    reasons.push(`a worker uses ${maxRss} MB (critical at ${criticalMb} MB)`);
  }
  if (!s.ready) {
    if (s.lastStartError) {
      status = 'CRITICAL';
      reasons.push(`no worker can start: ${s.lastStartError.message}`);
    } else if (workers.some((w) => w.state === 'starting')) {
      status = 'STARTING';
      reasons.push('workers are starting; requests wait in the queue');
    } else {
      reasons.push('no worker running (a lazy pool starts one on the first request)');
    }
  }
  return {
    status,
    httpStatus: status === 'CRITICAL' ? 503 : 200,
    reasons,
    thresholds: { warnMb, criticalMb },
    // As the first worker's `ready` frame said (null until one is ready).
    capabilities: info ? info.capabilities || null : null,
    pool: {
      size: s.size,
      queued: s.queued,
      running: s.running,
      maxQueue: Number.isFinite(s.maxQueue) ? s.maxQueue : null,
      completed: s.completed,
      failed: s.failed,
      recycled: s.recycled,
      totalRssMb: Math.round(workers.reduce((a, w) => a + (w.rssMb || 0), 0) * 10) / 10,
    },
    workers,
  };
}

module.exports = { health, procMemory };
