'use strict';

// removeBackgroundBuffer() and its default pool from PYWORKER_* variables;
// the demo script end to end.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { promisify } = require('node:util');
const { makePng, isPng, pidAlive, PYTHON } = require('./helpers');

const run = promisify(execFile);
const SHIM = path.resolve(__dirname, '..');
const png = makePng(160, 120);

const ENV = {
  ...process.env,
  PYWORKER_PYTHON: PYTHON,
  PYWORKER_POOL_SIZE: '1',
  PYWORKER_ARGS: '--no-warmup',
  PYWORKER_JOB_TIMEOUT_MS: '60000',
};

test('removeBackgroundBuffer uses a lazily created pool configured from the environment', async (t) => {
  const saved = { ...process.env };
  t.after(() => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  });
  Object.assign(process.env, { ...ENV, PYWORKER_MAX_QUEUE: '5', PYWORKER_THREADS: '1', PYWORKER_MEMORY_LIMIT_MB: '4000' });
  const shim = require('..');
  const out = await shim.removeBackgroundBuffer(png, { maxSize: 40 });
  assert.ok(isPng(out));
  const pool = shim.getDefaultPool();
  assert.equal(pool.options.size, 1);
  assert.equal(pool.options.maxQueue, 5);
  assert.equal(pool.options.threads, 1);
  assert.equal(pool.options.memoryLimitMb, 4000);
  const r = await shim.removeBackgroundBufferWithMeta(png, { maxSize: 40 });
  assert.equal(r.meta.width, 40);
  assert.equal(shim.getDefaultPool(), pool, 'one default pool');
  const pid = pool.stats().workers[0].pid;
  await shim.shutdown();
  assert.equal(pidAlive(pid), false);
  assert.notEqual(shim.getDefaultPool(), pool, 'a new one after shutdown');
  await shim.shutdown();
});

test('a script that never calls shutdown() still exits, and its worker with it', async () => {
  const script = `
    const { removeBackgroundBuffer, getDefaultPool } = require(${JSON.stringify(SHIM)});
    const png = require(${JSON.stringify(path.join(__dirname, 'helpers.js'))}).makePng(120, 90);
    removeBackgroundBuffer(png, { maxSize: 32 }).then((b) => {
      console.log(JSON.stringify({ bytes: b.length, pid: getDefaultPool().stats().workers[0].pid }));
    });
  `;
  const { stdout } = await run(process.execPath, ['-e', script], { env: ENV, timeout: 60_000 });
  const { bytes, pid } = JSON.parse(stdout);
  assert.ok(bytes > 0);
  const gone = await new Promise((resolve) => {
    const end = Date.now() + 60_000; // a wait for the state, not a bound: it returns as soon as the pid is gone
    const check = () => (!pidAlive(pid) ? resolve(true) : Date.now() > end ? resolve(false) : setTimeout(check, 50));
    check();
  });
  assert.ok(gone, `worker ${pid} exited after its parent`);
});

test('demo.js cleans every photo of a folder and prints the table', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pyworker-demo-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const samples = path.join(dir, 'samples');
  const out = path.join(dir, 'out');
  fs.mkdirSync(samples);
  fs.writeFileSync(path.join(samples, 'disc.png'), makePng(120, 90));
  fs.writeFileSync(path.join(samples, 'wide.png'), makePng(200, 100));
  fs.writeFileSync(path.join(samples, 'notes.txt'), 'not a photo');
  const { stdout } = await run(process.execPath, [path.join(SHIM, 'examples', 'demo.js'), samples, out], { env: ENV, timeout: 90_000 });
  assert.match(stdout, /photo\s+variant\s+input\s+latency ms\s+worker ms\s+worker pid\s+worker RSS MB/);
  assert.match(stdout, /disc\.png\s+cutout\s+[\d.]+ KB\s+\d+\s+\d+\s+\d+\s+[\d.]+\s+disc\.png/);
  // No face in a drawn disc: the ID version frames the subject instead.
  // Its report column names the checks that fail without a face.
  assert.match(stdout, /disc\.png\s+id card\s+[\d.]+ KB\s+\d+\s+\d+\s+\d+\s+[\d.]+\s+disc\.id\.png \(framed: subject\)\s+fails head_height, eye_line/);
  assert.match(stdout, /4\/4 written/);
  const files = ['disc.id.json', 'disc.id.png', 'disc.png', 'wide.id.json', 'wide.id.png', 'wide.png'];
  assert.deepEqual(fs.readdirSync(out).sort(), files);
  // The ID version's meta, for the contact sheet: its compliance report.
  const meta = JSON.parse(fs.readFileSync(path.join(out, 'disc.id.json'), 'utf8'));
  assert.equal(meta.compliance.preset, 'passport-35x45');
  assert.equal(meta.compliance.passed, false);
  assert.equal(meta.cropMode, 'subject');
  // No face: u2netp (the worker's model) made the mask, not the portrait model, and the meta says so.
  assert.equal(meta.model, 'u2netp');
  assert.deepEqual(meta.modelFallback, { from: 'modnet', reason: 'no_face' });
  assert.ok(isPng(fs.readFileSync(path.join(out, 'wide.png'))));
  // passport-35x45: 413x531 px whatever the input's shape.
  const id = fs.readFileSync(path.join(out, 'wide.id.png'));
  assert.deepEqual([id.readUInt32BE(16), id.readUInt32BE(20)], [413, 531]);
});
