'use strict';

// Batches over real HTTP (the batch router on Express), on the queue (a real
// redis-server, a real consumer process) and on a plain pool. The stand-in
// model keeps it quick (see queue.test.js); everything else is real.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');
const fflate = require('fflate');
const { createQueueClient, createPool, QueueFullError } = require('pyworker-cutout');
const { createBatchRouter } = require('pyworker-cutout/express');
const { BatchStore } = require('../lib/batch-store');
const { makePng, isPng, pngSize, standInModelHome, BASE } = require('./helpers');
const { startRedis } = require('./redis-helper');
const { startConsumer } = require('./queue-helpers');

/** Reads a server-sent-event stream to its end: [{event, data}]. */
async function readSse(url) {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const text = await res.text(); // the server ends the stream after `end`
  return text
    .split('\n\n')
    .filter((block) => block.trim() && !block.startsWith(':'))
    .map((block) => {
      const ev = {};
      for (const line of block.split('\n')) {
        const i = line.indexOf(': ');
        ev[line.slice(0, i)] = line.slice(i + 2);
      }
      return { event: ev.event, data: JSON.parse(ev.data) };
    });
}

async function listen(app) {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}

const sizes = Array.from({ length: 10 }, (_, i) => ({ width: 100 + 7 * i, height: 70 + 3 * i }));

function tenPhotosOneBad() {
  const fd = new FormData();
  for (const [i, s] of sizes.entries()) {
    const bytes = i === 4 ? Buffer.from('this is not a photo') : makePng(s.width, s.height);
    fd.append('photos', new Blob([bytes], { type: 'image/png' }), `photo-${i}.png`);
  }
  fd.append('maxSize', '0');
  return fd;
}

describe('batches on the queue', () => {
  let redis;
  let consumer;
  let q;
  let web;
  const standIn = standInModelHome();
  before(async () => {
    redis = await startRedis();
    consumer = await startConsumer({ redis: redis.url, queue: 'batches', poolSize: 1, concurrency: 2, env: standIn.env });
    q = createQueueClient({ redis: redis.url, queue: 'batches' });
    const app = express();
    app.use(createBatchRouter({ remover: q }));
    web = await listen(app);
  });
  after(async () => {
    await new Promise((r) => web.server.close(r));
    await q.close();
    await consumer.stop();
    await redis.stop();
    standIn.cleanup();
  });

  it('10 photos, 1 invalid: 10 progress events, 9 results and 1 error in the zip report', async () => {
    const res = await fetch(`${web.base}/api/batches`, { method: 'POST', body: tenPhotosOneBad() });
    assert.equal(res.status, 202);
    const { id, total, events, results } = await res.json();
    assert.equal(total, 10);
    const sse = await readSse(`${web.base}${events}`);
    const progress = sse.filter((e) => e.event === 'progress');
    assert.equal(progress.length, 10);
    assert.deepEqual(
      progress.map((e) => e.data.done + e.data.failed),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    assert.deepEqual(new Set(progress.map((e) => e.data.index)), new Set(sizes.map((_, i) => i)));
    const bad = progress.find((e) => !e.data.ok);
    assert.equal(bad.data.index, 4);
    assert.equal(bad.data.error.code, 'invalid_image');
    assert.deepEqual(sse.at(-1), { event: 'end', data: { id, total: 10, done: 9, failed: 1, finished: true } });

    const zipRes = await fetch(`${web.base}${results}`);
    assert.equal(zipRes.status, 200);
    assert.equal(zipRes.headers.get('content-type'), 'application/zip');
    const files = fflate.unzipSync(new Uint8Array(await zipRes.arrayBuffer()));
    const report = JSON.parse(Buffer.from(files['report.json']).toString('utf8'));
    assert.equal(report.done, 9);
    assert.equal(report.failed, 1);
    const errors = report.items.filter((it) => it.error);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].name, 'photo-4.png');
    assert.equal(errors[0].error.code, 'invalid_image');
    const images = Object.keys(files).filter((n) => n !== 'report.json');
    assert.equal(images.length, 9);
    for (const it of report.items.filter((x) => x.file)) {
      const png = Buffer.from(files[it.file]);
      assert.ok(isPng(png));
      assert.deepEqual(pngSize(png), sizes[it.index], `${it.file} has its own input's size`);
    }
  });

  it('one zip of photos is a batch; a thumbnail is served', async () => {
    const zip = fflate.zipSync({
      'class-a/ann.png': makePng(120, 90),
      'class-a/bob.png': makePng(130, 95),
      '__MACOSX/class-a/._ann.png': Buffer.from('junk'),
      'notes.txt': Buffer.from('not a photo'),
    });
    const fd = new FormData();
    fd.append('archive', new Blob([zip], { type: 'application/zip' }), 'photos.zip');
    fd.append('maxSize', '0');
    const res = await fetch(`${web.base}/api/batches`, { method: 'POST', body: fd });
    assert.equal(res.status, 202);
    const { id, total, events } = await res.json();
    assert.equal(total, 2);
    const sse = await readSse(`${web.base}${events}`);
    assert.equal(sse.filter((e) => e.event === 'progress' && e.data.ok).length, 2);
    // A late listener gets the whole history again.
    assert.equal((await readSse(`${web.base}${events}`)).length, 3);
    const thumb = await fetch(`${web.base}/api/batches/${id}/items/1`);
    assert.equal(thumb.headers.get('content-type'), 'image/png');
    assert.deepEqual(pngSize(Buffer.from(await thumb.arrayBuffer())), { width: 130, height: 95 });
    const status = await (await fetch(`${web.base}/api/batches/${id}`)).json();
    assert.deepEqual(
      status.items.map((it) => it.name),
      ['ann.png', 'bob.png'], // base names: folders dropped, names cut and made unique (zip-reader.js)
    );
  });

  it('bad requests get clear errors: no files, a bad option, an unknown batch', async () => {
    let res = await fetch(`${web.base}/api/batches`, { method: 'POST', body: new FormData() });
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /send photos/);
    const fd = new FormData();
    fd.append('photos', new Blob([makePng(100, 100)]), 'a.png');
    fd.append('format', 'gif');
    res = await fetch(`${web.base}/api/batches`, { method: 'POST', body: fd });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error.code, 'bad_request');
    res = await fetch(`${web.base}/api/batches/nope/results.zip`);
    assert.equal(res.status, 404);
    assert.equal((await res.json()).error.code, 'not_found');
  });

  it('q.removeBatch: a batch id and one progress event per photo', async () => {
    const files = sizes.slice(0, 5).map((s, i) => ({ name: `p${i}.png`, data: i === 2 ? Buffer.from('nope') : makePng(s.width, s.height) }));
    const batch = q.removeBatch(files, { maxSize: 0 });
    assert.match(batch.id, /^[0-9a-f-]{36}$/);
    const events = [];
    batch.on('progress', (e) => events.push(e));
    await batch.finished;
    assert.equal(events.length, 5);
    assert.deepEqual(batch.progress(), { id: batch.id, total: 5, done: 4, failed: 1, finished: true });
    assert.equal(batch.items[2].error.code, 'invalid_image');
    assert.deepEqual(pngSize(batch.items[3].result), sizes[3]);
  });
});

describe('batches on a plain pool', () => {
  it('the same routes with a local pool as the remover', async (t) => {
    const standIn = standInModelHome();
    t.after(() => standIn.cleanup());
    const pool = createPool({ ...BASE, size: 1, env: standIn.env });
    t.after(() => pool.close({ force: true }));
    const app = express();
    app.use(createBatchRouter({ remover: pool }));
    const web = await listen(app);
    t.after(() => new Promise((r) => web.server.close(r)));
    const res = await fetch(`${web.base}/api/batches`, { method: 'POST', body: tenPhotosOneBad() });
    const { events, results } = await res.json();
    const sse = await readSse(`${web.base}${events}`);
    assert.equal(sse.filter((e) => e.event === 'progress').length, 10);
    const files = fflate.unzipSync(new Uint8Array(await (await fetch(`${web.base}${results}`)).arrayBuffer()));
    assert.equal(Object.keys(files).length, 10); // 9 images + report.json
  });
});

describe('batch router: the same Express layer as the single-photo router', () => {
  // A closed lazy pool as the remover: no worker ever starts; every request here is answered before a photo runs.
  let web;
  let pool;
  const maxFiles = 3;
  /** The one store of this app; `full` makes it refuse new batches the way a capped store would. */
  class Store extends BatchStore {
    add(batch, run) {
      if (this.full) throw new QueueFullError('too many live batches', { maxQueue: 0 });
      return super.add(batch, run);
    }
  }
  // Not kept across processes: its batches fail pool_closed (a persistent store would keep them for the next one).
  const store = new Store({ dir: false });
  /** Photos that reached the pool (a closed one: each is refused pool_closed). */
  let sent = 0;
  before(async () => {
    pool = createPool({ ...BASE, size: 1, lazy: true });
    await pool.close();
    const remover = {
      removeWithMeta(image, options) {
        sent += 1;
        return pool.removeWithMeta(image, options);
      },
    };
    const app = express();
    app.use(createBatchRouter({ remover, maxFiles, store, retryAfterSeconds: 7, page: false }));
    web = await listen(app);
  });
  after(() => new Promise((r) => web.server.close(r)));

  const photos = (n) => {
    const fd = new FormData();
    for (let i = 0; i < n; i++) fd.append('photos', new Blob([makePng(40, 30)]), `p${i}.png`);
    return fd;
  };

  it('a malformed multipart body is a 400 bad_request (it was a 500)', async () => {
    const res = await fetch(`${web.base}/api/batches`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=XYZ' },
      body: '--XYZ\r\nContent-Disposition: form-data; name="photos"; filename="a.png"\r\n\r\ntruncated',
    });
    assert.equal(res.status, 400);
    const { error } = await res.json();
    assert.equal(error.code, 'bad_request');
    assert.match(error.message, /malformed multipart/);
  });

  it('more files than maxFiles: 413 input_too_large naming the limit', async () => {
    const res = await fetch(`${web.base}/api/batches`, { method: 'POST', body: photos(maxFiles + 1) });
    assert.equal(res.status, 413);
    const { error } = await res.json();
    assert.equal(error.code, 'input_too_large');
    assert.equal(error.message, `a batch holds at most ${maxFiles} photos (maxFiles)`);
  });

  it("a field is parsed by the contract's field list, with its wording", async () => {
    const fd = photos(1);
    fd.append('trim', 'maybe');
    const res = await fetch(`${web.base}/api/batches`, { method: 'POST', body: fd });
    assert.equal(res.status, 400);
    assert.deepEqual((await res.json()).error, { code: 'bad_request', message: 'field trim must be true or false, got "maybe"' });
  });

  it('a batch the store refuses is a 503 with Retry-After, and none of its photos reaches the remover', async () => {
    // Before: the batch was started before the store refused it: its photos ran for nobody (issue 22).
    store.full = true;
    const before = sent;
    try {
      const res = await fetch(`${web.base}/api/batches`, { method: 'POST', body: photos(2) });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '7');
      assert.equal((await res.json()).error.code, 'queue_full');
    } finally {
      store.full = false;
    }
    // The router and this client share one event loop: the lanes, had they been started, ran before the reply was read.
    assert.equal(sent - before, 0);
    // An admitted batch does reach it (the count above could have moved).
    const res = await fetch(`${web.base}/api/batches`, { method: 'POST', body: photos(2) });
    assert.equal(res.status, 202);
    const end = (await readSse(`${web.base}${(await res.json()).events}`)).at(-1);
    assert.deepEqual([end.data.failed, sent - before], [2, 2]);
  });
});
