'use strict';

/**
 * (1) pyworker through node-shim: a benchmark driver that uses only the
 * package's public API (createPool, pool.removeWithMeta, pool.stats, pool.close).
 *
 *   node bench/node_client.js SIZE THREADS
 *
 * Commands arrive as JSON lines on stdin, answers leave as JSON lines on stdout:
 *   {"op":"load","files":{"name":"/path"}}          -> {"ok":true}
 *   {"op":"run","name":"x","options":{...}}         -> {"ms":..,"meta":{..},"workerPid":..}
 *   {"op":"batch","names":[..],"concurrency":2,"options":{..}} -> {"wallS":..,"latMs":[..]}
 *   {"op":"peak"}   -> {"nodeMaxRssMb":..,"workers":[{pid,peakRssMb,rssMb}]}
 *   {"op":"quit"}   -> closes the pool, {"ok":true}, exit
 */

const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { performance } = require('node:perf_hooks');
const { createPool } = require(path.join(__dirname, '..', 'node-shim'));

const size = Number(process.argv[2] || 1);
const threads = Number(process.argv[3] || 1);
const pool = createPool({ size, threads, jobTimeoutMs: 600_000, startTimeoutMs: 120_000, maxQueue: Infinity });
/** @type {Map<string, Buffer>} */
const files = new Map();

function reply(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function runOne(name, options) {
  const image = files.get(name);
  if (!image) throw new Error(`not loaded: ${name}`);
  const t0 = performance.now();
  const r = await pool.removeWithMeta(image, options);
  return { ms: performance.now() - t0, meta: r.meta, workerPid: r.workerPid };
}

async function handle(cmd) {
  switch (cmd.op) {
    case 'load':
      for (const [name, p] of Object.entries(cmd.files)) files.set(name, fs.readFileSync(p));
      await pool.ready();
      return { ok: true };
    case 'run':
      return runOne(cmd.name, cmd.options || {});
    case 'batch': {
      const names = [...cmd.names];
      const latMs = [];
      const t0 = performance.now();
      const lane = async () => {
        while (names.length > 0) {
          const r = await runOne(names.shift(), cmd.options || {});
          latMs.push(r.ms);
        }
      };
      await Promise.all(Array.from({ length: cmd.concurrency }, lane));
      return { wallS: (performance.now() - t0) / 1000, latMs };
    }
    case 'peak': {
      const s = pool.stats();
      return {
        nodeMaxRssMb: process.resourceUsage().maxRSS / 1024,
        workers: s.workers.map((w) => ({ pid: w.pid, peakRssMb: w.peakRssMb, rssMb: w.rssMb, jobs: w.jobs })),
        workersStarted: s.workersStarted,
      };
    }
    case 'quit':
      await pool.close();
      return { ok: true };
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on('line', (line) => {
  if (!line.trim()) return;
  chain = chain.then(async () => {
    const cmd = JSON.parse(line);
    try {
      reply(await handle(cmd));
    } catch (err) {
      reply({ error: String((err && err.stack) || err) });
    }
    if (cmd.op === 'quit') process.exit(0);
  });
});
rl.on('close', () => {
  chain.then(() => pool.close()).then(() => process.exit(0));
});
