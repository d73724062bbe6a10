#!/usr/bin/env node
'use strict';

// make bench-queue: the queue's figures on this machine.
//  1. Throughput with 1 and 2 consumer processes (runs in ABBA order) ("machines"), each with a
//     pool of one worker (one onnxruntime thread), the real u2netp, the
//     samples at maxSize 320.
//  2. The queue's overhead per job against the plain pool: one job at a time,
//     the stand-in model (~1 ms), so what is measured is the path around the
//     worker: pool.removeWithMeta vs QueueClient.removeWithMeta through Redis
//     and one consumer, alternating job by job (paired).
// Prints the rows and `uptime`; writes bench/out/queue.json.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const NODE_SHIM = path.join(__dirname, '..', 'node-shim');
const { createPool, createQueueClient } = require(NODE_SHIM);
const { startRedis } = require(path.join(NODE_SHIM, 'test', 'redis-helper'));
const { startConsumer } = require(path.join(NODE_SHIM, 'test', 'queue-helpers'));
const { makePng, standInModelHome, PYTHON } = require(path.join(NODE_SHIM, 'test', 'helpers'));

const REPO = path.join(__dirname, '..');
const JOBS = Number(process.env.QUEUE_BENCH_JOBS || 32);
const PAIRS = Number(process.env.QUEUE_BENCH_PAIRS || 200);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(', ');

async function throughput(redis, consumers, photos) {
  const queue = `tp${consumers}-${Date.now()}`;
  const env = { PYWORKER_THREADS: '1' };
  const cs = [];
  for (let i = 0; i < consumers; i++) cs.push(await startConsumer({ redis: redis.url, queue, poolSize: 1, env, args: [] }));
  const q = createQueueClient({ redis: redis.url, queue });
  await q.ready();
  // One warm-up job per consumer (model load, first inference).
  await Promise.all(cs.map((_, i) => q.remove(photos[i % photos.length], { maxSize: 320 })));
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: JOBS }, (_, i) => q.removeWithMeta(photos[i % photos.length], { maxSize: 320 })));
  const s = (performance.now() - t0) / 1000;
  const byConsumer = {};
  for (const r of results) byConsumer[r.consumer] = (byConsumer[r.consumer] || 0) + 1;
  await q.close();
  for (const c of cs) await c.stop();
  return { consumers, jobs: JOBS, seconds: s, photosPerSecond: JOBS / s, byConsumer: Object.values(byConsumer), load: load() };
}

async function overhead(redis) {
  const standIn = standInModelHome();
  const img = makePng(320, 240);
  const pool = createPool({ python: PYTHON, size: 1, args: ['--no-warmup'], env: standIn.env });
  await pool.ready();
  const consumer = await startConsumer({ redis: redis.url, queue: 'overhead', poolSize: 1, env: standIn.env });
  const q = createQueueClient({ redis: redis.url, queue: 'overhead' });
  await q.ready();
  // Pool and queue alternate job by job, so both see the same moment's load;
  // the overhead is the median of the per-pair differences.
  const pairs = [];
  for (let i = 0; i < 3; i++) await Promise.all([pool.remove(img, { maxSize: 0 }), q.remove(img, { maxSize: 0 })]); // warm-up
  for (let i = 0; i < PAIRS; i++) {
    let t0 = performance.now();
    await pool.removeWithMeta(img, { maxSize: 0 });
    const p = performance.now() - t0;
    t0 = performance.now();
    await q.removeWithMeta(img, { maxSize: 0 });
    const qq = performance.now() - t0;
    pairs.push({ poolMs: p, queueMs: qq, overheadMs: qq - p });
  }
  await q.close();
  await consumer.stop();
  await pool.close();
  standIn.cleanup();
  const d = pairs.map((x) => x.overheadMs).sort((a, b) => a - b);
  return {
    pairs: PAIRS,
    poolMedianMs: median(pairs.map((x) => x.poolMs)),
    queueMedianMs: median(pairs.map((x) => x.queueMs)),
    overheadMedianMs: median(pairs.map((x) => x.overheadMs)),
    overheadIqrMs: [d[Math.floor(d.length / 4)], d[Math.floor((3 * d.length) / 4)]],
    load: load(),
  };
}

async function main() {
  const redis = await startRedis();
  try {
    const photos = fs
      .readdirSync(path.join(REPO, 'samples'))
      .filter((f) => /\.jpe?g$/i.test(f))
      .map((f) => fs.readFileSync(path.join(REPO, 'samples', f)));
    // ABBA order (1, 2, 2, 1 consumers): a load that drifts over the run weighs on both alike.
    const runs = [];
    for (const n of [1, 2, 2, 1]) runs.push(await throughput(redis, n, photos));
    const mean = (n) => {
      const rs = runs.filter((r) => r.consumers === n);
      const secs = rs.reduce((a, r) => a + r.seconds, 0);
      return { ...rs[0], runs: rs.length, seconds: secs, jobs: JOBS * rs.length, photosPerSecond: (JOBS * rs.length) / secs, load: rs.map((r) => r.load).join(' / ') };
    };
    const one = mean(1);
    const two = mean(2);
    const ov = await overhead(redis);
    const out = { runs, one, two, scaling: two.photosPerSecond / one.photosPerSecond, overhead: ov, uptime: execFileSync('uptime', { encoding: 'utf8' }).trim(), cores: os.cpus().length };
    fs.mkdirSync(path.join(__dirname, 'out'), { recursive: true });
    fs.writeFileSync(path.join(__dirname, 'out', 'queue.json'), `${JSON.stringify(out, null, 2)}\n`);
    console.log('| figure | measured | load (1, 5, 15 min) |');
    console.log('|---|---|---|');
    console.log(`| throughput, 1 consumer (pool of 1, u2netp, 2 runs of ${JOBS} samples at 320 px) | ${one.photosPerSecond.toFixed(2)} photos/s | ${one.load} |`);
    console.log(`| throughput, 2 consumers (same; jobs split ${runs.filter((r) => r.consumers === 2).map((r) => r.byConsumer.join('/')).join(', ')}) | ${two.photosPerSecond.toFixed(2)} photos/s (${out.scaling.toFixed(2)}x) | ${two.load} |`);
    console.log(`| one job, plain pool (stand-in model, median of ${PAIRS}) | ${ov.poolMedianMs.toFixed(1)} ms | ${ov.load} |`);
    console.log(`| one job, queue (same, through Redis and a consumer) | ${ov.queueMedianMs.toFixed(1)} ms | |`);
    console.log(`| queue overhead per job (median of ${PAIRS} paired differences; interquartile range) | ${ov.overheadMedianMs.toFixed(1)} ms (${ov.overheadIqrMs.map((x) => x.toFixed(1)).join(' to ')}) | |`);
    console.log(`${out.cores} cores; ${out.uptime}`);
  } finally {
    await redis.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
