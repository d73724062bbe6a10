'use strict';

// Consumer processes for the queue tests: the real command of the package's
// bin, each one a "machine".

const path = require('node:path');
const { spawn } = require('node:child_process');
const { PYTHON } = require('./helpers');

const BIN = path.join(__dirname, '..', 'bin', 'pyworker-queue-worker.js');

/**
 * Start `pyworker-queue-worker`; resolves once it logged "ready".
 * @param {{redis: string, queue: string, poolSize?: number, concurrency?: number, env?: Record<string,string>, args?: string[]}} o
 */
async function startConsumer(o) {
  const args = [BIN, '--redis', o.redis, '--queue', o.queue, '--pool-size', String(o.poolSize || 1)];
  if (o.concurrency) args.push('--concurrency', String(o.concurrency));
  args.push(...(o.args || []));
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, PYWORKER_PYTHON: PYTHON, PYWORKER_ARGS: '--no-warmup', PYWORKER_START_TIMEOUT_MS: '60000', ...(o.env || {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  /** @type {any[]} */
  const lines = [];
  let stderr = '';
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line));
      } catch {
        lines.push({ raw: line });
      }
    }
  });
  proc.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const ready = await new Promise((resolve, reject) => {
    const t = setInterval(() => {
      const r = lines.find((l) => l.event === 'ready');
      if (r) {
        clearInterval(t);
        resolve(r);
      } else if (proc.exitCode !== null) {
        clearInterval(t);
        reject(new Error(`consumer exited ${proc.exitCode} before ready: ${stderr}`));
      }
    }, 20);
  });
  return {
    proc,
    pid: /** @type {number} */ (proc.pid),
    ready,
    lines,
    exited,
    stderr: () => stderr,
    /** SIGTERM (drain) and the exit status. */
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

module.exports = { startConsumer, BIN };
