'use strict';

// Issue 22: the batch router under the uploads that froze or bloated the app (attacks 1-4, 7, 9). The app runs in
// a child process (test/fixtures/batch-server.js): its peak memory is read from /proc (VmHWM), its longest
// event-loop block is measured by the server itself (GET /stats). The stand-in model keeps jobs quick.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const http = require('node:http');
const { spawn } = require('node:child_process');
const fflate = require('fflate');
const { createPool } = require('..');
const { runBatch } = require('../lib/batches');
const { defaultStoreDir } = require('../lib/batch-store');
const os = require('node:os');
const { makePng, makeNoisyPng, standInModelHome, faultFile, waitFor, BASE } = require('./helpers');
const { startRedis } = require('./redis-helper');
const { startConsumer } = require('./queue-helpers');
const { craftZip, zip64Declaring, deflatedZeros } = require('./zip-craft');

const MiB = 1024 * 1024;

function vmHwmMb(pid) {
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
}

const FIXTURE = path.join(__dirname, 'fixtures', 'batch-server.js');

/**
 * Start the batch app with these router options: {child, base, stop, cleanup}. It runs in `cwd` (default: a new
 * temporary directory), which names its default store directory: a restarted app given the same cwd finds it.
 */
async function startApp(routerOptions, env, cwd) {
  const ownCwd = !cwd;
  cwd = cwd || fs.mkdtempSync(path.join(os.tmpdir(), 'batch-app-'));
  const child = spawn(process.execPath, [FIXTURE], {
    cwd,
    env: { ...process.env, ...env, PYWORKER_PYTHON: BASE.python, PYWORKER_THREADS: '1', BATCH_ROUTER_OPTIONS: JSON.stringify(routerOptions) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      const m = /listening on (\d+)/.exec(String(d));
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`app exited ${code}`)));
  });
  const stop = () => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL');
  return {
    child,
    base: `http://127.0.0.1:${port}`,
    port,
    stop,
    /** Stopped, its store directory and (if made here) its cwd removed. */
    cleanup() {
      stop();
      fs.rmSync(routerOptions.storeDir || defaultStoreDir({ cwd, main: FIXTURE }), { recursive: true, force: true });
      if (ownCwd) fs.rmSync(cwd, { recursive: true, force: true });
    },
  };
}

function form(files, fields = {}) {
  const fd = new FormData();
  for (const [name, bytes] of files) fd.append('photos', new Blob([bytes]), name);
  for (const [k, v] of Object.entries(fields)) fd.append(k, v);
  return fd;
}

/** Reads an SSE stream to its end; returns the `end` event's data. */
async function untilEnd(url) {
  const text = await (await fetch(url)).text();
  const end = text.split('\n\n').find((b) => b.startsWith('event: end'));
  return JSON.parse(end.split('\ndata: ')[1]);
}

describe('batch router under hostile uploads', () => {
  let app;
  const standIn = standInModelHome();
  before(async () => {
    app = await startApp({}, standIn.env);
  });
  after(() => {
    app.cleanup();
    standIn.cleanup();
  });

  it('a 128-byte ZIP64 declaring 2^28 entries and 100 entries over one 256 MiB zero stream: refused, the loop never blocked 1 s', async () => {
    // Before: the first blocked the event loop > 90 s (health and SIGTERM unanswered), the second 49 s.
    let res = await fetch(`${app.base}/api/batches`, { method: 'POST', body: form([['x.zip', zip64Declaring(2 ** 28)]]) });
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /central directory \(12348030976 bytes at 0\) is outside the file/);
    const zeros = await deflatedZeros(256 * MiB);
    const entries = [{ name: 'p0.jpg', raw: zeros, size: 1000 }];
    for (let i = 1; i < 100; i++) entries.push({ name: `p${i}.jpg`, sharesWith: 0, size: 1000 });
    res = await fetch(`${app.base}/api/batches`, { method: 'POST', body: form([['bomb.zip', craftZip(entries)]]) });
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /overlapping entries/);
    const { maxBlockMs } = await (await fetch(`${app.base}/stats`)).json();
    assert.ok(maxBlockMs < 1000, `event loop blocked ${maxBlockMs} ms`);
  });

  it('four zips of one 499 MiB entry at once, and bodies of 5 x 99 MiB: the app stays under 400 MB', async (t) => {
    // Before: 2,063 MB before a 413, and 2,047-2,244 MB with all four 202.
    const zeros = await deflatedZeros(499 * MiB);
    const zip = craftZip([
      { name: 'huge.jpg', raw: zeros, size: 499 * MiB },
      { name: 'small.png', data: makePng(80, 60) },
    ]);
    const replies = await Promise.all(Array.from({ length: 4 }, () => fetch(`${app.base}/api/batches`, { method: 'POST', body: form([['z.zip', zip]]) })));
    for (const r of replies) {
      assert.equal(r.status, 202);
      const body = await r.json();
      const end = await untilEnd(`${app.base}${body.events}`);
      assert.deepEqual([end.done, end.failed], [1, 1]);
      const state = await (await fetch(`${app.base}/api/batches/${body.id}`)).json();
      assert.equal(state.items[0].error.code, 'input_too_large'); // never inflated: 499 MB > the photo limit
    }
    // A body declared 5 x 99 MiB is refused on its headers: nothing of it is read.
    const statuses = await Promise.all(
      Array.from(
        { length: 4 },
        () =>
          new Promise((resolve, reject) => {
            const req = http.request(`${app.base}/api/batches`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=b', 'content-length': String(5 * 99 * MiB) } });
            req.on('response', (r) => {
              r.resume();
              resolve(r.statusCode);
              req.destroy();
            });
            req.on('error', reject);
            req.flushHeaders();
          }),
      ),
    );
    assert.deepEqual(statuses, [413, 413, 413, 413]);
    const peak = vmHwmMb(app.child.pid);
    t.diagnostic(`app peak RSS ${peak.toFixed(0)} MB`);
    assert.ok(peak < 400, `app peak RSS ${peak.toFixed(0)} MB`);
  });

  it('results.zip is streamed: four clients downloading a batch of 54 MB of results at once cost the app little', async (t) => {
    // Before: each download built the zip in memory (449 MB, 8.7 s, the loop stalled 5 s, for 8 x 4.7 MB JPEGs).
    const photos = Array.from({ length: 6 }, (_, i) => [`n${i}.png`, makeNoisyPng(1500, 1500, i + 1)]);
    const res = await fetch(`${app.base}/api/batches`, { method: 'POST', body: form(photos, { maxSize: '0' }) });
    assert.equal(res.status, 202);
    const { events, results } = await res.json();
    const end = await untilEnd(`${app.base}${events}`);
    assert.equal(end.done, 6);
    const before = vmHwmMb(app.child.pid);
    const zips = await Promise.all(Array.from({ length: 4 }, async () => Buffer.from(await (await fetch(`${app.base}${results}`)).arrayBuffer())));
    const rise = vmHwmMb(app.child.pid) - before;
    for (const z of zips) {
      assert.ok(z.length > 50 * MiB, `${z.length} bytes`);
      const files = fflate.unzipSync(new Uint8Array(z), { filter: (f) => f.name === 'report.json' });
      assert.equal(JSON.parse(Buffer.from(files['report.json']).toString()).done, 6);
    }
    t.diagnostic(`app peak RSS rose ${rise.toFixed(0)} MB for 4 x ${(zips[0].length / MiB).toFixed(0)} MB of zips`);
    assert.ok(rise < 60, `app peak RSS rose ${rise.toFixed(0)} MB for 4 x ${(zips[0].length / MiB).toFixed(0)} MB of zips`);
    const { maxBlockMs } = await (await fetch(`${app.base}/stats`)).json();
    assert.ok(maxBlockMs < 1000, `event loop blocked ${maxBlockMs} ms`);
  });

  it('two photos of one name: both run, the second renamed and reported', async () => {
    // Before: 9 of 10 photos, one silently dropped (a zip keyed by name).
    const png = makePng(80, 60);
    const zip = craftZip([
      { name: 'a/x.png', data: png },
      { name: 'b/x.png', data: png },
    ]);
    const res = await fetch(`${app.base}/api/batches`, { method: 'POST', body: form([['z.zip', zip]]) });
    const body = await res.json();
    assert.equal(body.total, 2);
    assert.deepEqual(body.renamed, [{ from: 'b/x.png', to: 'x-2.png' }]); // folders dropped silently, clashes reported
  });
});

describe('batch router: budgets across requests, the cap on kept batches', () => {
  let app;
  const standIn = standInModelHome();
  before(async () => {
    app = await startApp({ maxTotalBytes: 4 * MiB, maxBatches: 2, retryAfterSeconds: 3 }, standIn.env);
  });
  after(() => {
    app.cleanup();
    standIn.cleanup();
  });

  it("an upload beyond what all uploads may hold together is 503 + Retry-After while another's body is held", async () => {
    const boundary = 'b0undary';
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="photos"; filename="slow.png"\r\n\r\n`);
    const png = makePng(80, 60);
    const padding = Buffer.alloc(3 * MiB - png.length);
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const length = head.length + png.length + padding.length + tail.length;
    // Held open: its headers (3 MiB declared) are admitted when the server says 100-continue.
    const slow = http.request(`${app.base}/api/batches`, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(length), expect: '100-continue' },
    });
    const slowReply = new Promise((resolve) => slow.on('response', (r) => resolve(r)));
    await new Promise((resolve) => slow.once('continue', resolve));
    slow.write(head);
    const res = await fetch(`${app.base}/api/batches`, { method: 'POST', body: form([['b.png', Buffer.concat([png, Buffer.alloc(2 * MiB)])]]) });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '3');
    assert.match((await res.json()).error.message, /batch uploads in progress hold 3\.0MB \(maxTotalBytes 4\.0MB\)/);
    slow.end(Buffer.concat([png, padding, tail]));
    const r = await slowReply;
    assert.equal(r.statusCode, 202);
    let text = '';
    for await (const c of r) text += c;
    await untilEnd(`${app.base}${JSON.parse(text).events}`); // finished: the oldest batch the next test's cap forgets
  });

  it('at the cap on kept batches, the oldest finished one is forgotten for a new one', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${app.base}/api/batches`, { method: 'POST', body: form([[`p${i}.png`, makePng(80, 60)]]) });
      assert.equal(res.status, 202);
      const body = await res.json();
      await untilEnd(`${app.base}${body.events}`);
      ids.push(body.id);
    }
    const status = await Promise.all(ids.map(async (id) => (await fetch(`${app.base}/api/batches/${id}`)).status));
    // Kept: 2 at most (the test before left one, finished); each new batch made the oldest finished one go.
    assert.deepEqual(status, [404, 200, 200]);
  });
});

describe('fair batches', () => {
  it('a photo answered queue_full waits its turn instead of failing (two batches on a pool with a queue of 1)', async (t) => {
    // Before: every photo beyond the pool's queue failed queue_full at once.
    const standIn = standInModelHome();
    t.after(() => standIn.cleanup());
    const pool = createPool({ ...BASE, size: 1, maxQueue: 1, env: standIn.env });
    t.after(() => pool.close({ force: true }));
    await pool.ready();
    const files = Array.from({ length: 5 }, (_, i) => ({ name: `p${i}.png`, data: makePng(80 + i, 60) }));
    const a = runBatch(pool, files, {}, { concurrency: 4 });
    const b = runBatch(pool, files, {}, { concurrency: 4 });
    await Promise.all([a.finished, b.finished]);
    assert.deepEqual([a.progress().done, b.progress().done], [5, 5], JSON.stringify([...a.items, ...b.items].map((it) => it.error).filter(Boolean)));
  });
});

/** Reads a batch's SSE stream to its end: its progress events and its end. */
async function events(url) {
  const text = await (await fetch(url)).text();
  const blocks = text.split('\n\n').filter((b) => b.startsWith('event: '));
  const data = (b) => JSON.parse(b.split('\ndata: ')[1]);
  return { progress: blocks.filter((b) => b.startsWith('event: progress')).map(data), end: data(blocks.find((b) => b.startsWith('event: end'))) };
}

/** Every photo of a batch done, once each, its results.zip complete. */
async function assertAllDone(base, batch, names) {
  const { progress, end } = await events(`${base}${batch.events}`);
  assert.deepEqual([end.done, end.failed, end.total], [names.length, 0, names.length], JSON.stringify(progress.filter((p) => !p.ok)));
  assert.deepEqual(progress.map((p) => p.index).sort(), names.map((_, i) => i)); // one event a photo, none twice
  const zip = Buffer.from(await (await fetch(`${base}${batch.results}`)).arrayBuffer());
  assert.deepEqual(Object.keys(fflate.unzipSync(new Uint8Array(zip))).sort(), [...names, 'report.json'].sort());
}

const exitOf = (child) => new Promise((r) => child.once('exit', (code, signal) => r(code ?? signal)));

describe('batches survive restarts (the default store: on disk, taken over by the next process)', () => {
  const photos = Array.from({ length: 3 }, (_, i) => [`p${i}.png`, makePng(80 + i, 60)]);
  const names = photos.map(([n]) => n);

  it('on a pool: SIGTERM mid-batch, then SIGKILL mid-batch; the restarted app answers for the batches and resumes the unfinished photos', async (t) => {
    // Before: after a restart the batch was 404 "unknown, or expired"; with storeDir (session 5) a SIGKILL failed
    // the unfinished photos job_lost.
    const standIn = standInModelHome();
    const fault = faultFile();
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'batch-app-'));
    const env = { ...standIn.env, ...fault.env };
    const opts = { concurrency: 1 };
    let app = await startApp(opts, env, cwd);
    t.after(() => {
      app.cleanup();
      fs.rmSync(cwd, { recursive: true, force: true });
      standIn.cleanup();
      fault.cleanup();
    });
    let res = await fetch(`${app.base}/api/batches`, { method: 'POST', body: form(photos) });
    const done = await res.json();
    assert.equal((await untilEnd(`${app.base}${done.events}`)).done, 3);

    // SIGTERM while the next batch's first photo runs (1.5 s): that photo finishes, the two behind it are not
    // sent to a closing pool (they would fail pool_closed) but left for the next process.
    fault.arm('slow:1500');
    res = await fetch(`${app.base}/api/batches`, { method: 'POST', body: form(photos) });
    assert.equal(res.status, 202);
    const cut = await res.json();
    assert.ok(await waitFor(() => !fault.armed(), 30_000), 'the first photo never started');
    let exited = exitOf(app.child);
    app.child.kill('SIGTERM');
    assert.equal(await exited, 0);

    // Restarted: the resumed batch's next photo hangs (8 s), and the app is SIGKILLed during it.
    fault.arm('slow:8000');
    app = await startApp(opts, env, cwd);
    assert.ok(await waitFor(() => !fault.armed(), 30_000), 'the batch was not resumed');
    exited = exitOf(app.child);
    app.child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');

    // Restarted again: both batches answered for, the cut one finished by resuming its photos.
    app = await startApp(opts, env, cwd);
    await assertAllDone(app.base, cut, names);
    await assertAllDone(app.base, done, names);
  });

  it("several processes of one app (a cluster): a live process's batches are left to it; of two starting together, one takes a dead one's", async (t) => {
    const standIn = standInModelHome();
    const fault = faultFile();
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'batch-app-'));
    const env = { ...standIn.env, ...fault.env };
    const opts = { concurrency: 1 };
    const apps = [];
    t.after(() => {
      for (const a of apps) a.cleanup();
      fs.rmSync(cwd, { recursive: true, force: true });
      standIn.cleanup();
      fault.cleanup();
    });
    const first = await startApp(opts, env, cwd);
    apps.push(first);
    fault.arm('slow:8000');
    const res = await fetch(`${first.base}/api/batches`, { method: 'POST', body: form(photos) });
    const batch = await res.json();
    assert.ok(await waitFor(() => !fault.armed(), 30_000), 'the first photo never started');
    // Another process of the app starts while the first runs the batch: it does not take it (nor resume it).
    const other = await startApp(opts, env, cwd);
    apps.push(other);
    assert.equal((await fetch(`${other.base}/api/batches/${batch.id}`)).status, 404);
    const exited = exitOf(first.child);
    first.child.kill('SIGKILL');
    await exited;
    // Two start together after the first died: exactly one takes the batch over and finishes it.
    const pair = await Promise.all([startApp(opts, env, cwd), startApp(opts, env, cwd)]);
    apps.push(...pair);
    const status = await Promise.all(pair.map(async (a) => (await fetch(`${a.base}/api/batches/${batch.id}`)).status));
    assert.deepEqual([...status].sort(), [200, 404]);
    await assertAllDone(pair[status.indexOf(200)].base, batch, names);
    assert.equal((await fetch(`${other.base}/api/batches/${batch.id}`)).status, 404); // it started before the death
  });

  it('on the queue: app SIGTERM, app SIGKILL and a Redis restart, each mid-batch: every photo done', async (t) => {
    // Before: SIGKILL left photos never queued and results stranded in Redis; a Redis restart failed the photos in
    // flight (job_timeout, session 5: job_lost). Real redis-server, consumer process and app process.
    const standIn = standInModelHome();
    const fault = faultFile();
    let redis = await startRedis();
    const consumer = await startConsumer({ redis: redis.url, queue: 'survive', poolSize: 2, concurrency: 2, env: { ...standIn.env, ...fault.env } });
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'batch-app-'));
    const env = { BATCH_REDIS: redis.url, BATCH_QUEUE: 'survive' };
    const opts = { concurrency: 1 };
    let app;
    t.after(async () => {
      if (app) app.cleanup();
      fs.rmSync(cwd, { recursive: true, force: true });
      await consumer.stop('SIGKILL');
      await redis.stop();
      standIn.cleanup();
      fault.cleanup();
    });
    const four = [...photos, ['p3.png', makePng(90, 70)]];
    /** The next photo the consumer runs takes `ms`; resolves once it started. */
    const slowNext = async (ms) => {
      fault.arm(`slow:${ms}`);
      return waitFor(() => !fault.armed(), 30_000);
    };

    app = await startApp(opts, env, cwd);
    fault.arm('slow:3000');
    const res = await fetch(`${app.base}/api/batches`, { method: 'POST', body: form(four) });
    assert.equal(res.status, 202);
    const batch = await res.json();
    assert.ok(await waitFor(() => !fault.armed(), 30_000), 'the first photo never started');
    let exited = exitOf(app.child);
    app.child.kill('SIGTERM'); // the queue client closes: the photo awaited and those behind are left for the next process
    assert.equal(await exited, 0);

    app = await startApp(opts, env, cwd);
    assert.ok(await slowNext(3000), 'the batch was not resumed after the SIGTERM');
    exited = exitOf(app.child);
    app.child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');

    app = await startApp(opts, env, cwd);
    assert.ok(await slowNext(3000), 'the batch was not resumed after the SIGKILL');
    // Redis restarted without persistence while that photo runs: its job is gone (job_lost), and sent again.
    const port = redis.port;
    await redis.stop();
    redis = await startRedis({ port });
    const t0 = Date.now();
    await assertAllDone(app.base, batch, four.map(([n]) => n));
    t.diagnostic(`after the Redis restart: ${Date.now() - t0} ms to the end`);
  });
});
