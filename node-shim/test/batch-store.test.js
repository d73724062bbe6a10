'use strict';

// The batch store's take-over rules, on real files: whose batches a starting store takes, and what becomes of
// each photo of a batch its owner left unfinished (the restart tests in batch-attacks.test.js run real apps).

const { it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { createPool } = require('..');
const { makePng, pngSize, standInModelHome, waitFor, BASE } = require('./helpers');

/** batch-store.js loaded afresh: a module of its own, with its own run id, as in another process. */
function freshStoreModule() {
  for (const k of Object.keys(require.cache)) if (k.endsWith(`${path.sep}batch-store.js`)) delete require.cache[k];
  return require('../lib/batch-store');
}

/** Removes a store's directory, trying again while its last writes (state, input removal) land in it. */
async function removeDir(dir) {
  for (let i = 0; ; i++) {
    try {
      return fs.rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      if (err.code !== 'ENOTEMPTY' || i > 50) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** The pid of a process that has exited. */
function deadPid() {
  return spawnSync(process.execPath, ['-e', '0']).pid;
}

/** A state file as a store writes it, owned by a process that is gone. */
function writeState(dir, id, items, extra = {}) {
  const state = { id, total: items.length, done: 0, failed: 0, finished: false, createdAt: Date.now(), finishedAt: null, owner: { pid: deadPid(), run: 'gone' }, options: {}, history: [], items, ...extra };
  fs.writeFileSync(path.join(dir, `${id}.json`), JSON.stringify(state));
}

const item = (index, status, more = {}) => ({ index, name: `p${index}.png`, bytes: 3, status, file: null, resultBytes: 0, mime: null, meta: null, error: null, input: null, ...more });

it("of two stores starting on one directory together, one takes a dead owner's batch; a live owner's is left alone", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batch-store-'));
  t.after(() => removeDir(dir));
  writeState(dir, 'dead-owner', [item(0, 'done')], { finishedAt: Date.now(), done: 1, finished: true });
  writeState(dir, 'live-owner', [item(0, 'done')], { finishedAt: Date.now(), done: 1, finished: true, owner: { pid: process.ppid, run: 'alive' } });
  // Both made in one tick, as two processes reading the directory before either has rewritten the owner.
  const a = new (freshStoreModule().BatchStore)({ dir });
  const b = new (freshStoreModule().BatchStore)({ dir });
  assert.deepEqual([Boolean(a.get('dead-owner')), Boolean(b.get('dead-owner'))], [true, false]);
  assert.deepEqual([Boolean(a.get('live-owner')), Boolean(b.get('live-owner'))], [false, false]);
  // The taker writes itself in as the owner (then the directory can go).
  const owner = () => JSON.parse(fs.readFileSync(path.join(dir, 'dead-owner.json'), 'utf8')).owner;
  assert.ok(await waitFor(() => owner().pid === process.pid), JSON.stringify(owner()));
});

it("a dead owner's unfinished photos: resumed from their inputs, failed job_lost without one; inputs of photos that ran removed", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batch-store-'));
  t.after(() => removeDir(dir));
  const input = (i, bytes = 'abc') => {
    const f = path.join(dir, `b-${i}.in`);
    fs.writeFileSync(f, bytes);
    return f;
  };
  // 0 ran and was recorded (its input not yet removed); 1 queued with its input; 2 queued, its input gone.
  const photo = makePng(80, 60);
  writeState(dir, 'b', [item(0, 'failed', { input: input(0), error: { code: 'invalid_image', message: 'x' } }), item(1, 'queued', { input: input(1, photo), bytes: photo.length }), item(2, 'queued', { input: path.join(dir, 'b-2.in') })], { failed: 1 });
  const store = new (freshStoreModule().BatchStore)({ dir });
  const b = store.get('b');
  assert.deepEqual(
    b.items.map((it) => [it.status, it.error && it.error.code]),
    [
      ['failed', 'invalid_image'],
      ['queued', null],
      ['failed', 'job_lost'],
    ],
  );
  assert.equal(fs.existsSync(path.join(dir, 'b-0.in')), false);
  // resume() runs photo 1 from its input file on a real pool; the batch then ends, its result on disk.
  const standIn = standInModelHome();
  const pool = createPool({ ...BASE, size: 1, env: standIn.env });
  t.after(async () => {
    await pool.close({ force: true });
    standIn.cleanup();
  });
  assert.equal(store.resume(pool), 1);
  await b.finished;
  assert.deepEqual(b.progress(), { id: 'b', total: 3, done: 1, failed: 2, finished: true }, JSON.stringify(b.items[1].error));
  assert.deepEqual(pngSize(fs.readFileSync(b.items[1].file)), { width: 80, height: 60 });
});
