'use strict';

// The Express template over real HTTP on 127.0.0.1, with a real pool.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { createPool, WorkerError, TimeoutError, QueueFullError, PoolClosedError } = require('..');
const { createApp, errorResponse, optionsFromFields } = require('../examples/express-app');
const { makePng, isPng, pngSize, faultFile, waitFor, BASE } = require('./helpers');

const png = makePng(160, 120);

function form(bytes, { type = 'image/png', name = 'photo.png', fields = {} } = {}) {
  const fd = new FormData();
  if (bytes) fd.append('image', new Blob([bytes], { type }), name);
  for (const [k, v] of Object.entries(fields)) fd.append(k, v);
  return fd;
}

describe('express template', () => {
  let pool;
  let server;
  let base;
  const fault = faultFile();

  before(async () => {
    pool = createPool({ ...BASE, size: 1, maxQueue: 1, jobTimeoutMs: 20_000, env: { PYWORKER_TEST_FAULT_FILE: fault.file } });
    const app = createApp({ pool, maxUploadBytes: 200_000, criticalMb: 4096 });
    await pool.ready();
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    base = `http://127.0.0.1:${server.address().port}`;
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await pool.close({ force: true });
    fault.cleanup();
  });

  const post = (body) => fetch(`${base}/api/remove-background`, { method: 'POST', body });

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
    fault.arm('slow:2500');
    const first = post(form(png, { fields: { maxSize: '32' } }));
    assert.ok(await waitFor(() => !fault.armed()));
    const second = post(form(png, { fields: { maxSize: '32' } })); // queued (maxQueue 1)
    assert.ok(await waitFor(() => pool.stats().queued === 1));
    const res = await post(form(png, { fields: { maxSize: '32' } }));
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '2');
    assert.equal((await res.json()).error.code, 'queue_full');
    assert.equal((await first).status, 200);
    assert.equal((await second).status, 200);
  });

  it('/health answers with status and the RSS of each worker', async () => {
    const res = await fetch(`${base}/health`);
    assert.equal(res.status, 200);
    const h = await res.json();
    assert.equal(h.status, 'OK');
    assert.equal(h.workers.length, 1);
    assert.equal(typeof h.workers[0].rssMb, 'number');
    assert.equal(typeof h.workers[0].pid, 'number');
    assert.equal(h.pool.size, 1);
    assert.deepEqual(h.thresholds, { criticalMb: 4096, warnMb: 3277 });
  });
});

describe('express template: health thresholds', () => {
  it('WARNING and CRITICAL from memory thresholds', async (t) => {
    const pool = createPool({ ...BASE, size: 1 });
    t.after(() => pool.close({ force: true }));
    await pool.ready();
    const app = createApp({ pool, warnMb: 1, criticalMb: 100_000 });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    t.after(() => new Promise((r) => server.close(r)));
    const url = `http://127.0.0.1:${server.address().port}/health`;
    let res = await fetch(url);
    assert.equal((await res.json()).status, 'WARNING');
    const app2 = createApp({ pool, criticalMb: 1 });
    const server2 = app2.listen(0, '127.0.0.1');
    await new Promise((r) => server2.once('listening', r));
    t.after(() => new Promise((r) => server2.close(r)));
    res = await fetch(`http://127.0.0.1:${server2.address().port}/health`);
    assert.equal(res.status, 503);
    const h = await res.json();
    assert.equal(h.status, 'CRITICAL');
    assert.match(h.reasons.join(' '), /critical at 1 MB/);
  });
});

describe('express template: error mapping', () => {
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
});
