'use strict';

// The batch page in a real browser: Debian's chromium, headless, driven by
// playwright-core (test/page-driver.js), against the batch router on real
// HTTP; once with a plain local pool (the real u2netp, as ID photos), once
// with the queue (a real redis-server and consumer process).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const express = require('express');
const fflate = require('fflate');
const { createPool, createQueueClient } = require('..');
const { createBatchRouter } = require('../lib/express/batch-router');
const { REPO, BASE, isPng, makePng, standInModelHome } = require('./helpers');
const { launch, runPage } = require('./page-driver');
const { startRedis } = require('./redis-helper');
const { startConsumer } = require('./queue-helpers');

async function serve(t, remover) {
  const app = express();
  app.use(createBatchRouter({ remover }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  t.after(() => new Promise((r) => server.close(r)));
  return `http://127.0.0.1:${server.address().port}/`;
}

function readZip(file) {
  const files = fflate.unzipSync(fs.readFileSync(file));
  return { files, report: JSON.parse(Buffer.from(files['report.json']).toString('utf8')) };
}

describe('the page in headless Chromium', () => {
  let browser;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pyworker-page-'));
  before(async () => {
    browser = await launch();
  });
  after(async () => {
    await browser.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a plain pool: two photos, 100 %, two thumbnails and reports, the zip', async (t) => {
    const pool = createPool({ ...BASE, size: 1 });
    t.after(() => pool.close({ force: true }));
    const url = await serve(t, pool);
    // GET / is the page itself.
    const html = await (await fetch(url)).text();
    assert.match(html, /<title>pyworker/);
    const files = ['astronaut.jpg', 'coffee.jpg'].map((f) => path.join(REPO, 'samples', f));
    const r = await runPage(browser, url, { files, preset: 'passport-35x45', bgColor: '#dfe8f5', screenshot: path.join(dir, 'page.png'), downloadTo: path.join(dir, 'batch.zip') });
    assert.equal(r.percent, '100 %');
    assert.equal(r.ariaNow, '100');
    assert.equal(r.status, '2 done, 0 failed, 2 in all');
    assert.deepEqual(
      r.thumbs.map((x) => x.alt).sort(),
      ['astronaut.jpg', 'coffee.jpg'],
    );
    // passport-35x45 at the default maxSize: 622x800 thumbnails.
    for (const th of r.thumbs) assert.deepEqual([th.w, th.h], [622, 800]);
    assert.equal(r.reports.length, 2);
    for (const rep of r.reports) assert.ok(rep.some((line) => /→ 622×800/.test(line)), rep.join(' | '));
    const astronaut = r.reports[r.thumbs.findIndex((x) => x.alt === 'astronaut.jpg')];
    assert.ok(astronaut.some((l) => /^pass: face found/.test(l)), astronaut.join(' | '));
    // The compliance report of a preset job (meta.compliance): its verdict and each check with its range.
    for (const rep of r.reports) {
      assert.ok(rep.some((l) => /^(pass: compliant|fail: not compliant)$/.test(l)), rep.join(' | '));
      assert.ok(rep.some((l) => /^(pass|fail): head_height: ([\d.]+|n\/a) \(accepted [\d.]+–[\d.]+\)/.test(l)), rep.join(' | '));
    }
    assert.deepEqual(r.consoleErrors, []);
    assert.ok(fs.statSync(path.join(dir, 'page.png')).size > 10_000, 'a screenshot');
    const zip = readZip(r.zipPath);
    assert.equal(zip.report.done, 2);
    assert.deepEqual(Object.keys(zip.files).sort(), ['astronaut.png', 'coffee.png', 'report.json']);
    for (const n of ['astronaut.png', 'coffee.png']) assert.ok(isPng(Buffer.from(zip.files[n])));
  });

  it('the queue: the same page, a bad photo reported with its code', async (t) => {
    const redis = await startRedis();
    const standIn = standInModelHome();
    const consumer = await startConsumer({ redis: redis.url, queue: 'page', poolSize: 1, env: standIn.env });
    const q = createQueueClient({ redis: redis.url, queue: 'page' });
    t.after(async () => {
      await q.close();
      await consumer.stop();
      await redis.stop();
      standIn.cleanup();
    });
    const url = await serve(t, q);
    const good = path.join(dir, 'good.png');
    const bad = path.join(dir, 'broken.png');
    fs.writeFileSync(good, makePng(160, 120));
    fs.writeFileSync(bad, 'not a png at all');
    const r = await runPage(browser, url, { files: [good, bad], maxSize: 0, downloadTo: path.join(dir, 'queue.zip') });
    assert.equal(r.percent, '100 %');
    assert.equal(r.status, '1 done, 1 failed, 2 in all');
    assert.deepEqual(r.thumbs, [{ alt: 'good.png', w: 160, h: 120 }]);
    assert.equal(r.errors.length, 1);
    assert.match(r.errors[0], /^invalid_image: /);
    const zip = readZip(r.zipPath);
    assert.deepEqual(
      zip.report.items.map((it) => [it.name, it.status, it.error ? it.error.code : it.file]),
      [
        ['good.png', 'done', 'good.png'],
        ['broken.png', 'failed', 'invalid_image'],
      ],
    );
  });
});
