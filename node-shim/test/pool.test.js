'use strict';

// Pool against real Python workers: round trips, concurrency, queue, abort,
// close, recycling, start failures.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { createPool, WorkerError, QueueFullError, PoolClosedError, isFallback } = require('..');
const { REPO, makePng, isPng, pngSize, pidAlive, waitFor, settledBeforeNextTurn, testPool, faultFile, BASE, SMALL } = require('./helpers');

const png = makePng(160, 120);

test('round trip: a PNG in, a smaller PNG cut-out out, with meta and stats', async (t) => {
  const pool = testPool(t, { size: 1 });
  await pool.ready();
  const r = await pool.removeWithMeta(png, SMALL);
  assert.equal(r.fallback, false);
  assert.equal(r.mime, 'image/png');
  assert.ok(isPng(r.image));
  assert.deepEqual(pngSize(r.image), { width: 64, height: 48 });
  assert.equal(r.meta.width, 64);
  assert.equal(r.meta.inputWidth, 160);
  assert.equal(r.meta.model, 'u2netp');
  assert.equal(typeof r.meta.timingsMs.total, 'number');
  assert.equal(typeof r.stats.rssMb, 'number');
  assert.equal(r.stats.jobs, 1);
  assert.equal(r.workerPid, pool.stats().workers[0].pid);
  assert.equal(r.attempts, 1);

  const buf = await pool.remove(png, { ...SMALL, format: 'webp', bgColor: [255, 255, 255] });
  assert.ok(Buffer.isBuffer(buf));
  assert.equal(buf.subarray(8, 12).toString('latin1'), 'WEBP');
  assert.equal(isFallback(buf), false);
});

test('a sample photo round-trips', async (t) => {
  const pool = testPool(t, { size: 1 });
  const jpg = fs.readFileSync(path.join(REPO, 'samples', 'astronaut.jpg'));
  const r = await pool.removeWithMeta(jpg, { maxSize: 96, trim: true, padding: 2 });
  assert.ok(isPng(r.image));
  assert.equal(r.meta.inputWidth, 512);
  assert.equal(r.meta.cropMode, 'trim');
  // max_size bounds the cut-out; trim's padding is added around it
  assert.ok(r.meta.width <= 96 + 2 * 2 && r.meta.height <= 96 + 2 * 2, `${r.meta.width}x${r.meta.height}`);
});

test('an error reply rejects with the worker code and is not retried', async (t) => {
  const pool = testPool(t, { size: 1 });
  await pool.ready();
  const pid = pool.stats().workers[0].pid;
  const err = await pool.remove(Buffer.from('not an image at all'), SMALL).catch((e) => e);
  assert.ok(err instanceof WorkerError);
  assert.equal(err.code, 'invalid_image');
  assert.equal(err.workerPid, pid);
  assert.equal(err.retriable, false);
  const tooSmall = await pool.remove(makePng(20, 20)).catch((e) => e);
  assert.equal(tooSmall.code, 'image_too_small');
  assert.match(tooSmall.message, /50/);
  const unknown = await pool.remove(png, { colour: 'red' }).catch((e) => e);
  assert.equal(unknown.code, 'bad_request', 'unknown options reach the worker, which rejects them');
  assert.match(unknown.message, /colour/);
  const s = pool.stats();
  assert.equal(s.retried, 0);
  assert.equal(s.workers[0].pid, pid, 'same worker, still serving');
  assert.ok(isPng(await pool.remove(png, SMALL)));
});

test('bad arguments fail before reaching a worker', async (t) => {
  const pool = testPool(t, { size: 1, lazy: true });
  await assert.rejects(pool.remove('a string'), TypeError);
  await assert.rejects(pool.remove(png, { maxSize: -5 }), (e) => e instanceof WorkerError && e.code === 'bad_request' && /maxSize/.test(e.message));
  await assert.rejects(pool.remove(png, { format: 'gif' }), /format must be "png", "webp" or "jpeg"/);
  assert.equal(pool.stats().workers.length, 0, 'lazy pool started nothing');
  assert.equal(pool.stats().submitted, 0);
});

test('an input above the workers\' --max-input-mb is refused without sending it', async (t) => {
  const pool = testPool(t, { size: 1, maxInputMb: 1 });
  await pool.ready();
  const err = await pool.remove(Buffer.alloc(1.5 * 1024 * 1024, 1)).catch((e) => e);
  assert.ok(err instanceof WorkerError);
  assert.equal(err.code, 'input_too_large');
  assert.equal(err.message, 'File size (1.5MB) exceeds maximum (1MB)');
  assert.equal(pool.stats().workers[0].jobs, 0);
});

test('20 concurrent requests over a pool of 2 all succeed, on both workers', async (t) => {
  const pool = testPool(t, { size: 2 });
  await pool.ready();
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.removeWithMeta(png, { maxSize: 32 + i })));
  for (const [i, r] of results.entries()) {
    assert.ok(isPng(r.image));
    assert.equal(r.meta.width, 32 + i, 'each reply went to its own request');
  }
  assert.equal(new Set(results.map((r) => r.workerPid)).size, 2);
  const s = pool.stats();
  assert.equal(s.completed, 20);
  assert.equal(s.failed, 0);
  assert.equal(s.workersStarted, 2);
});

test('maxQueue: beyond it, QueueFullError at once', async (t) => {
  const pool = testPool(t, { size: 1, maxQueue: 2 });
  await pool.ready();
  const accepted = [pool.remove(png, SMALL), pool.remove(png, SMALL), pool.remove(png, SMALL)]; // 1 running + 2 queued
  let firstDone = false;
  accepted[0].then(() => (firstDone = true));
  const err = await pool.remove(png, SMALL).catch((e) => e);
  assert.equal(firstDone, false, 'rejected at once, not after waiting for a worker');
  assert.ok(err instanceof QueueFullError);
  assert.equal(err.code, 'queue_full');
  assert.equal(err.message, 'queue is full (maxQueue=2); retry later or raise maxQueue');
  for (const buf of await Promise.all(accepted)) assert.ok(isPng(buf));
  assert.equal(pool.stats().queueFull, 1);
});

test('abort: a queued job never reaches a worker', async (t) => {
  const pool = testPool(t, { size: 1 });
  await pool.ready();
  const running = pool.remove(png, SMALL);
  const ac = new AbortController();
  const queued = pool.remove(png, { ...SMALL, signal: ac.signal });
  assert.equal(pool.stats().queued, 1);
  ac.abort();
  await assert.rejects(queued, { name: 'AbortError' });
  assert.equal(pool.stats().queued, 0);
  await running;
  assert.equal(pool.stats().workers[0].jobs, 1, 'the worker saw one job only');
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(pool.remove(png, { signal: pre.signal }), { name: 'AbortError' });
});

test('abort: a running job rejects at once; its worker is killed and replaced', async (t) => {
  // Decision (README "Decisions"): the caller is gone, so the job's worker is not left working for nobody.
  const fault = faultFile();
  t.after(() => fault.cleanup());
  const pool = testPool(t, { size: 1, env: fault.env });
  await pool.ready();
  const pid = pool.stats().workers[0].pid;
  fault.arm('slow:30000');
  const ac = new AbortController();
  const job = pool.remove(png, { maxSize: 40, signal: ac.signal });
  assert.equal(await fault.claimed(), pid, 'the worker claimed the fault');
  ac.abort(new Error('client went away'));
  const err = await settledBeforeNextTurn(job); // rejected at once, not when the 30 s job ends
  assert.equal(err.name, 'AbortError');
  assert.equal(err.cause.message, 'client went away');
  const next = await pool.removeWithMeta(png, { maxSize: 56 });
  assert.equal(next.meta.width, 56, 'the next job got its own reply');
  // A size-1 pool: served by another process means the busy one was not waited for.
  assert.notEqual(next.workerPid, pid, 'served by the replacement');
  assert.equal(pidAlive(pid), false, 'the aborted job\'s worker was killed');
  assert.equal(pool.stats().aborted, 1);
  assert.equal(pool.stats().retried, 0);
});

test('close() drains queued and running jobs, then leaves no process behind', async (t) => {
  const pool = testPool(t, { size: 2 });
  await pool.ready();
  const pids = pool.stats().workers.map((w) => w.pid);
  const jobs = Array.from({ length: 3 }, () => pool.remove(png, SMALL));
  const closing = pool.close();
  await assert.rejects(pool.remove(png), PoolClosedError);
  for (const buf of await Promise.all(jobs)) assert.ok(isPng(buf));
  await closing;
  assert.deepEqual(pids.filter(pidAlive), []);
  assert.equal(pool.stats().workers.length, 0);
  await pool.close(); // idempotent
});

test('close({force: true}) rejects the queue and kills the workers', async (t) => {
  const pool = testPool(t, { size: 1 });
  await pool.ready();
  const pid = pool.stats().workers[0].pid;
  const jobs = Array.from({ length: 3 }, () => pool.remove(png, SMALL).catch((e) => e));
  await pool.close({ force: true });
  for (const e of await Promise.all(jobs)) assert.ok(e instanceof PoolClosedError, String(e));
  assert.equal(pidAlive(pid), false);
});

test('lazy pool starts workers on demand; ready() starts one', async (t) => {
  const pool = testPool(t, { size: 2, lazy: true, maxJobsPerWorker: 100, maxJobsJitter: 10 });
  assert.equal(pool.stats().workers.length, 0);
  const ready = [];
  pool.on('ready', (info) => ready.push(info));
  await pool.ready();
  assert.equal(pool.stats().workers.length, 1);
  assert.equal(ready[0].model, 'u2netp');
  assert.equal(typeof ready[0].pid, 'number');
  await Promise.all([pool.remove(png, SMALL), pool.remove(png, SMALL)]);
  assert.equal(pool.stats().workers.length, 2);
  for (const w of pool.stats().workers) assert.ok(w.maxJobs >= 100 && w.maxJobs <= 110, `jittered maxJobs ${w.maxJobs}`);
});

test('idleTimeoutMs stops idle workers above minWorkers, and only those', async (t) => {
  const pool = testPool(t, { size: 2, minWorkers: 1, idleTimeoutMs: 300 });
  const exits = [];
  pool.on('exit', (e) => exits.push(e));
  await Promise.all([pool.remove(png, SMALL), pool.remove(png, SMALL)]);
  assert.equal(pool.stats().workersStarted, 2, 'the second job started a second worker');
  // The first to go idle may be stopped while the other still works: wait for the count, not a moment.
  assert.ok(await waitFor(() => pool.stats().workers.length === 1, 10_000), JSON.stringify(pool.stats().workers));
  assert.deepEqual(exits.map((e) => e.reason), ['idle']);
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(pool.stats().workers.length, 1, 'minWorkers stay, however long they idle');
  assert.equal(pool.stats().recycled.crash, 0);
  assert.ok(Buffer.isBuffer(await pool.remove(png, SMALL)), 'the pool still serves');
});

test("fallback: 'original' serves the input, marked, on worker failures only", async (t) => {
  const fault = faultFile();
  t.after(() => fault.cleanup());
  const pool = testPool(t, { size: 1, fallback: 'original', retries: 0, env: fault.env });
  // The worker crashes mid-job: the input comes back, marked, with the error.
  fault.arm('crash');
  const buf = await pool.remove(png, SMALL);
  assert.ok(buf.equals(png));
  assert.ok(isFallback(buf));
  assert.equal(buf.pyworkerFallback.code, 'worker_crashed');
  assert.equal(Object.keys(buf).includes('pyworkerFallback'), false, 'not enumerable');
  // The job hangs past its timeout: the same, with removeWithMeta's shape.
  fault.arm('hang');
  const r = await pool.removeWithMeta(png, { ...SMALL, timeoutMs: 1500 });
  assert.equal(r.fallback, true);
  assert.equal(r.error.code, 'job_timeout');
  assert.equal(r.mime, 'image/png');
  assert.equal(r.meta, null);
  // The caller's own mistakes always reject, whatever the fallback.
  const junk = Buffer.from('\x89PNG\r\n\x1a\n but truncated', 'latin1');
  await assert.rejects(pool.remove(junk, SMALL), { code: 'invalid_image' });
  await assert.rejects(pool.remove(png, { ...SMALL, bgColor: 'blue' }), { code: 'bad_request' });
  await assert.rejects(pool.remove(png, { ...SMALL, bgColour: '#ffffff' }), { code: 'bad_request' });
  await assert.rejects(pool.remove(makePng(20, 20)), { code: 'image_too_small' });
  // per request: throw wins over the pool's fallback
  fault.arm('crash');
  await assert.rejects(pool.remove(png, { ...SMALL, fallback: 'throw' }), { code: 'worker_crashed' });
  assert.ok(isPng(await pool.remove(png, SMALL)));
});

test('memoryLimitMb below the idle RSS: workers recycle after every job, no request fails', async (t) => {
  const pool = testPool(t, { size: 2, memoryLimitMb: 1 });
  const recycles = [];
  const exits = [];
  pool.on('recycle', (e) => recycles.push(e));
  pool.on('exit', (e) => exits.push(e));
  await pool.ready();
  const results = await Promise.all(Array.from({ length: 4 }, () => pool.removeWithMeta(png, SMALL)));
  for (const r of results) assert.ok(isPng(r.image));
  assert.equal(new Set(results.map((r) => r.workerPid)).size, 4, 'a fresh worker for every job');
  assert.equal(recycles.length, 4);
  assert.ok(recycles.every((e) => e.reason === 'memory'));
  const s = pool.stats();
  assert.equal(s.failed, 0);
  assert.equal(s.retried, 0);
  assert.equal(s.recycled.memory, 4);
  assert.ok(await waitFor(() => results.every((r) => !pidAlive(r.workerPid))), 'retired workers exited');
  assert.ok(await waitFor(() => exits.length === 4));
  assert.deepEqual(exits.map((e) => e.code), [75, 75, 75, 75], 'each worker retired itself (--max-rss-mb, exit 75)');
});

test('memoryLimitMb enforced by the client when the worker does not retire itself', async (t) => {
  // A later --max-rss-mb wins over the pool's: the worker never says retiring.
  const pool = testPool(t, { size: 1, memoryLimitMb: 1, args: ['--no-warmup', '--max-rss-mb', '100000'] });
  const recycles = [];
  const exits = [];
  pool.on('recycle', (e) => recycles.push(e));
  pool.on('exit', (e) => exits.push(e));
  const a = await pool.removeWithMeta(png, SMALL);
  const b = await pool.removeWithMeta(png, SMALL);
  assert.notEqual(a.workerPid, b.workerPid);
  assert.ok(await waitFor(() => exits.length >= 1));
  assert.equal(exits[0].code, 0, 'stopped with shutdown');
  assert.equal(recycles[0].reason, 'memory');
  assert.ok(recycles[0].rssMb > 1);
});

test('maxJobsPerWorker: a worker is replaced after N jobs', async (t) => {
  const pool = testPool(t, { size: 1, maxJobsPerWorker: 2, maxJobsJitter: 0 });
  const recycles = [];
  pool.on('recycle', (e) => recycles.push(e));
  const pids = [];
  for (let i = 0; i < 3; i++) pids.push((await pool.removeWithMeta(png, SMALL)).workerPid);
  assert.equal(pids[0], pids[1]);
  assert.notEqual(pids[1], pids[2]);
  assert.deepEqual(recycles.map((e) => [e.reason, e.jobs]), [['jobs', 2]]);
  assert.equal(pool.stats().recycled.jobs, 1);
});

test('a worker that cannot start (fatal frame, exit 78) is not restarted in a loop', async (t) => {
  const errors = [];
  const spawned = [];
  const pool = createPool({
    ...BASE,
    size: 2,
    model: 'isnet-general-use', // known to the worker, weights not on disk
    restartBackoffMs: 60_000, // far beyond the 500 ms looked at below, however loaded the machine
    logger: (e) => e.event === 'spawn' && spawned.push(e.pid),
  });
  t.after(() => pool.close({ force: true }));
  pool.on('error', (e) => errors.push(e));
  const err = await pool.ready().catch((e) => e);
  assert.ok(err instanceof WorkerError, String(err));
  assert.equal(err.code, 'model_unavailable');
  const queued = await pool.remove(png).catch((e) => e);
  assert.equal(queued.code, 'model_unavailable');
  assert.match(queued.message, /no worker is running; the pool tries again/);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(spawned.length, 2, 'no restart during the back-off');
  assert.ok(errors.length >= 1 && errors.every((e) => e.code === 'model_unavailable'));
  assert.equal(pool.stats().lastStartError.code, 'model_unavailable');
});

test('an interpreter that does not exist fails clearly', async (t) => {
  const pool = testPool(t, { size: 1, python: '/nonexistent/python3' });
  const err = await pool.remove(png).catch((e) => e);
  assert.ok(err instanceof WorkerError);
  assert.equal(err.code, 'start_failed');
  assert.match(err.message, /ENOENT/);
  assert.match(err.message, /nonexistent/);
});

test('logger gets the workers\' JSON stderr lines and the client\'s events', async (t) => {
  const entries = [];
  const pool = testPool(t, { size: 1, logger: (e) => entries.push(e) });
  await pool.remove(png, SMALL);
  const done = entries.find((e) => e.event === 'job_done');
  assert.ok(done, 'job_done logged');
  assert.equal(done.source, 'worker');
  assert.equal(done.level, 'info');
  assert.equal(typeof done.ts, 'string');
  assert.ok(entries.some((e) => e.source === 'client' && e.event === 'spawn'));
});
