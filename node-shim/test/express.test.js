'use strict';

// pyworker-cutout/express (the router a host app mounts) over real HTTP on
// 127.0.0.1, with a real pool.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const express = require('express');
const { createPool, WorkerError, TimeoutError, QueueFullError, PoolClosedError } = require('pyworker-cutout');
const { createRouter, errorResponse, optionsFromFields, health } = require('pyworker-cutout/express');
const { makePng, isPng, pngSize, faultFile, waitFor, BASE } = require('./helpers');

/** A host app: its own route before and after the mounted router. */
function createApp(routerOptions) {
  const app = express();
  app.get('/', (req, res) => res.send('host home'));
  app.use('/api', createRouter(routerOptions));
  app.get('/api/host-route', (req, res) => res.json({ host: true }));
  return app;
}

/** Listen on a free port; resolves with the base URL and closes the server after the test. */
async function listen(t, app) {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  if (t) t.after(() => new Promise((r) => server.close(r)));
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}

/** VmHWM of a process in MiB, read here independently of the router. */
function vmHwmMb(pid) {
  const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  return Math.round((kb / 1024) * 10) / 10;
}

const png = makePng(160, 120);

function form(bytes, { type = 'image/png', name = 'photo.png', fields = {} } = {}) {
  const fd = new FormData();
  if (bytes) fd.append('image', new Blob([bytes], { type }), name);
  for (const [k, v] of Object.entries(fields)) fd.append(k, v);
  return fd;
}

describe('express router', () => {
  let pool;
  let server;
  let base;
  const fault = faultFile();

  before(async () => {
    pool = createPool({ ...BASE, size: 1, maxQueue: 1, jobTimeoutMs: 20_000, env: fault.env });
    const app = createApp({ pool, maxUploadBytes: 200_000, criticalMb: 4096 });
    await pool.ready();
    ({ server, base } = await listen(null, app));
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await pool.close({ force: true });
    fault.cleanup();
  });

  const post = (body) => fetch(`${base}/api/remove-background`, { method: 'POST', body });

  it("the host app's own routes are untouched around it", async () => {
    assert.equal(await (await fetch(`${base}/`)).text(), 'host home');
    assert.deepEqual(await (await fetch(`${base}/api/host-route`)).json(), { host: true });
    assert.equal((await fetch(`${base}/api/nothing-here`)).status, 404);
  });

  it('a good image gets a PNG', async () => {
    const res = await post(form(png, { fields: { maxSize: '48' } }));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/png');
    assert.match(res.headers.get('x-worker-pid'), /^\d+$/);
    const body = Buffer.from(await res.arrayBuffer());
    assert.ok(isPng(body));
    assert.deepEqual(pngSize(body), { width: 48, height: 36 });
  });

  it('options come from form fields (format=webp, bgColor)', async () => {
    const res = await post(form(png, { fields: { maxSize: '40', format: 'webp', bgColor: '#00ff00', trim: 'true' } }));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/webp');
  });

  it('a bad image gets 400 with the worker message', async () => {
    const res = await post(form(Buffer.from('this is not a png'), { fields: { maxSize: '48' } }));
    assert.equal(res.status, 400);
    const { error } = await res.json();
    assert.equal(error.code, 'invalid_image');
    assert.match(error.message, /Not a recognised image/);
  });

  it('a too small image gets 400 image_too_small', async () => {
    const res = await post(form(makePng(20, 20)));
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.code, 'image_too_small');
  });

  it('a bad option gets 400 bad_request', async () => {
    for (const fields of [{ maxSize: 'big' }, { format: 'gif' }]) {
      const res = await post(form(png, { fields }));
      assert.equal(res.status, 400, JSON.stringify(fields));
      const { error } = await res.json();
      assert.equal(error.code, 'bad_request');
    }
  });

  it('no file gets 400; a GIF gets 415; a large upload gets 413', async () => {
    let res = await post(form(null, { fields: { maxSize: '48' } }));
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /field "image"/);
    res = await post(form(Buffer.from('GIF89a....'), { type: 'image/gif', name: 'a.gif' }));
    assert.equal(res.status, 415);
    assert.equal((await res.json()).error.code, 'unsupported_format');
    res = await post(form(Buffer.alloc(300_000, 1)));
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error.code, 'input_too_large');
  });

  it('a full queue gets 503 with Retry-After', async () => {
    // The first job lasts until this test ends it (a 2.5 s one used to end first on a loaded machine, and
    // the third request was then queued instead of refused).
    fault.arm('slow:60000');
    const first = post(form(png, { fields: { maxSize: '32' } }));
    const busy = await fault.claimed();
    const second = post(form(png, { fields: { maxSize: '32' } })); // queued (maxQueue 1)
    assert.ok(await waitFor(() => pool.stats().queued === 1));
    const res = await post(form(png, { fields: { maxSize: '32' } }));
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '2');
    assert.equal((await res.json()).error.code, 'queue_full');
    process.kill(busy, 'SIGKILL'); // the first job is retried on the replacement
    assert.equal((await first).status, 200);
    assert.equal((await second).status, 200);
  });

  it('/health answers with status and each worker\'s RSS and peak from /proc', async () => {
    const res = await fetch(`${base}/api/health`);
    assert.equal(res.status, 200);
    const h = await res.json();
    assert.equal(h.status, 'OK');
    assert.equal(h.workers.length, 1);
    const w = h.workers[0];
    assert.equal(w.source, 'proc');
    assert.equal(w.peakRssMb, vmHwmMb(w.pid), 'the kernel\'s peak, not the worker\'s last report');
    assert.ok(w.rssMb > 10 && w.rssMb <= w.peakRssMb, JSON.stringify(w));
    assert.equal(h.pool.size, 1);
    assert.deepEqual(h.thresholds, { criticalMb: 4096, warnMb: 3277 });
  });
});

describe('express router: health', () => {
  it('a worker that has exited is not listed, even while its request is being settled (it filtered a state that never occurs)', async (t) => {
    // health.js filtered 'exited', which no worker state is: a worker gone mid-job (its slot kept until its
    // request is retried) was listed, with /proc figures of a dead pid. The pool's 'exit' event comes then.
    const fault = faultFile();
    t.after(() => fault.cleanup());
    const pool = createPool({ ...BASE, size: 1, env: fault.env });
    t.after(() => pool.close({ force: true }));
    await pool.ready();
    fault.arm('slow:30000');
    const job = pool.removeWithMeta(png, { maxSize: 32 });
    const pid = await fault.claimed();
    let seen = null;
    pool.once('exit', () => {
      seen = { states: pool.stats().workers.map((w) => [w.pid, w.state]), listed: health(pool, { warnMb: 1e6, criticalMb: 2e6 }).workers.map((w) => w.pid) };
    });
    process.kill(pid, 'SIGKILL');
    assert.equal((await job).attempts, 2);
    assert.deepEqual(seen.states, [[pid, 'gone']], 'the moment this test is about');
    assert.deepEqual(seen.listed, []);
  });

  it('STARTING (200) while the pool starts, then OK', async (t) => {
    const pool = createPool({ ...BASE, size: 1, args: [] }); // with warm-up: a start that takes a while
    t.after(() => pool.close({ force: true }));
    const { base } = await listen(t, createApp({ pool, criticalMb: 100_000 }));
    let res = await fetch(`${base}/api/health`);
    assert.equal(res.status, 200);
    let h = await res.json();
    assert.equal(h.status, 'STARTING', JSON.stringify(h));
    await pool.ready();
    res = await fetch(`${base}/api/health`);
    h = await res.json();
    assert.equal(h.status, 'OK');
    assert.equal(h.workers[0].state, 'idle');
  });

  it('CRITICAL (503) when workers cannot start, with the reason', async (t) => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'pyworker-empty-home-'));
    t.after(() => fs.rmSync(home, { recursive: true, force: true }));
    const pool = createPool({ ...BASE, size: 1, env: { U2NET_HOME: home } });
    t.after(() => pool.close({ force: true }));
    await assert.rejects(pool.ready(), { code: 'model_unavailable' });
    const { base } = await listen(t, createApp({ pool }));
    const res = await fetch(`${base}/api/health`);
    assert.equal(res.status, 503);
    const h = await res.json();
    assert.equal(h.status, 'CRITICAL');
    // The message names the command that fixes it.
    assert.match(h.reasons.join(' '), /no worker can start: .*u2netp.*pyworker models install u2netp/);
  });

  it('WARNING and CRITICAL from memory thresholds', async (t) => {
    const pool = createPool({ ...BASE, size: 1 });
    t.after(() => pool.close({ force: true }));
    await pool.ready();
    const { base } = await listen(t, createApp({ pool, warnMb: 1, criticalMb: 100_000 }));
    let res = await fetch(`${base}/api/health`);
    assert.equal((await res.json()).status, 'WARNING');
    const second = await listen(t, createApp({ pool, criticalMb: 1 }));
    res = await fetch(`${second.base}/api/health`);
    assert.equal(res.status, 503);
    const h = await res.json();
    assert.equal(h.status, 'CRITICAL');
    assert.match(h.reasons.join(' '), /critical at 1 MB/);
  });
});

describe('express router: error mapping', () => {
  it('maps error codes to HTTP statuses', () => {
    const status = (err) => errorResponse(err).status;
    const we = (code) => new WorkerError('x', { code });
    assert.equal(status(we('input_too_large')), 413);
    assert.equal(status(we('image_too_large')), 413);
    assert.equal(status(we('unsupported_format')), 415);
    for (const c of ['invalid_image', 'image_too_small', 'bad_request', 'no_face']) assert.equal(status(we(c)), 400, c);
    assert.equal(status(we('internal')), 500);
    assert.equal(status(we('worker_crashed')), 502);
    assert.equal(status(new TimeoutError('t', { timeoutMs: 1 })), 504);
    const full = errorResponse(new QueueFullError('q', { maxQueue: 1 }));
    assert.equal(full.status, 503);
    assert.equal(full.headers['Retry-After'], '2');
    assert.equal(status(new PoolClosedError()), 503);
    assert.equal(status(new Error('boom')), 500);
    assert.equal(errorResponse(new Error('secret detail')).message, 'internal error');
  });

  it('parses form fields into options', () => {
    assert.deepEqual(optionsFromFields({ maxSize: '10', trim: 'true', refine: '0', bgColor: '#ffffff', ignored: 'x' }), {
      maxSize: 10,
      trim: true,
      refine: false,
      bgColor: '#ffffff',
    });
    assert.throws(() => optionsFromFields({ padding: '-1' }), /padding must be an integer/);
    assert.throws(() => optionsFromFields({ trim: 'maybe' }), /trim must be true or false/);
  });

  it('a ticked HTML checkbox ("on") is true, as the batch router always read it', () => {
    assert.deepEqual(optionsFromFields({ trim: 'on', strict: 'ON', refine: 'false' }), { trim: true, strict: true, refine: false });
    assert.throws(() => optionsFromFields({ trim: 'off' }), /trim must be true or false, got "off"/);
  });
});
