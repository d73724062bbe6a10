'use strict';

// Runs the README's "Scale-out" section as written: its Redis command, two
// consumer machines, the app server, and its JavaScript. The only changes are
// the ones a reader makes: REDIS_HOST is 127.0.0.1, the ports are free ones,
// Redis binds loopback only, `npx pyworker-queue-worker` is the package's bin
// (this repo is not installed from npm), require('pyworker-cutout') is this
// package. The consumers get the stand-in model (queue.test.js says why).

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const fflate = require('fflate');
const { REPO, PYTHON, makePng, pngSize, isPng, standInModelHome, waitFor } = require('./helpers');
const { ensureCommand, freePort } = require('./redis-helper');
const { BIN } = require('./queue-helpers');

/** The section's code blocks, in order: [{lang, code}]. */
function scaleOutBlocks() {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf('## Scale-out');
  assert.ok(start >= 0, 'README has a Scale-out section');
  const end = readme.indexOf('\n## ', start + 5);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], code: m[2].trim() }));
}

/** Start a shell command of the README (bash runs a simple command in its own process: signals reach it); its stdout lines are collected. */
function run(command, { env = {}, cwd = REPO } = {}) {
  const proc = spawn('bash', ['-c', command], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { lines: [], stderr: '', proc, exited: new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal }))) };
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop();
    out.lines.push(...parts);
  });
  proc.stderr.on('data', (d) => (out.stderr += d));
  return out;
}

describe('README scale-out section', () => {
  it('runs as written: one Redis, two consumer machines, an app server, the client code', async (t) => {
    const blocks = scaleOutBlocks();
    assert.deepEqual(
      blocks.map((b) => b.lang),
      ['sh', 'sh', 'sh', 'js'],
    );
    const [redisCmd, consumerCmd, appCmd, clientJs] = blocks.map((b) => b.code);
    ensureCommand('redis-server');
    const redisPort = await freePort();
    const appPort = await freePort();
    const local = (s) => s.replaceAll('REDIS_HOST', '127.0.0.1').replaceAll('6379', String(redisPort));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pyworker-readme-'));
    const standIn = standInModelHome();
    const procs = [];
    t.after(async () => {
      for (const p of procs.reverse()) {
        if (p.proc.exitCode === null && p.proc.signalCode === null) p.proc.kill('SIGKILL');
        await p.exited;
      }
      standIn.cleanup();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    // 1. Redis
    const redis = run(local(redisCmd).replace('--bind 0.0.0.0', '--bind 127.0.0.1'), { cwd: dir });
    procs.push(redis);
    // 2. Two consumer machines
    const workerEnv = { PYWORKER_PYTHON: PYTHON, PYWORKER_ARGS: '--no-warmup', ...standIn.env };
    const consumerLine = local(consumerCmd).replace('npx pyworker-queue-worker', `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)}`);
    const consumers = [];
    for (let i = 0; i < 2; i++) {
      // Redis may take a moment: the consumer retries its connection meanwhile.
      const c = run(consumerLine, { env: workerEnv });
      procs.push(c);
      consumers.push(c);
    }
    for (const c of consumers) {
      assert.ok(await waitFor(() => c.lines.some((l) => l.includes('"event":"ready"')), 90_000), `consumer ready: ${c.stderr}`);
    }
    for (const c of consumers) assert.equal(JSON.parse(c.lines.find((l) => l.includes('"ready"'))).workers.length, 2, '--pool-size 2');

    // 3. The app server, batches on the queue
    const app = run(local(appCmd).replace('PORT=3000', `PORT=${appPort}`), { env: workerEnv });
    procs.push(app);
    assert.ok(await waitFor(() => app.lines.some((l) => l.startsWith('listening on')), 60_000), `app up: ${app.stderr}`);
    const base = `http://127.0.0.1:${appPort}`;
    assert.match(await (await fetch(`${base}/`)).text(), /Background removal/);
    const fd = new FormData();
    for (let i = 0; i < 4; i++) fd.append('photos', new Blob([makePng(100 + 10 * i, 80)]), `p${i}.png`);
    fd.append('maxSize', '0');
    const posted = await (await fetch(`${base}/api/batches`, { method: 'POST', body: fd })).json();
    assert.equal(posted.total, 4);
    const sse = await (await fetch(`${base}${posted.events}`)).text();
    assert.equal((sse.match(/^event: progress$/gm) || []).length, 4);
    assert.match(sse, /event: end\ndata: \{[^}]*"done":4,"failed":0/);
    const zip = fflate.unzipSync(new Uint8Array(await (await fetch(`${base}${posted.results}`)).arrayBuffer()));
    assert.deepEqual(Object.keys(zip).sort(), ['p0.png', 'p1.png', 'p2.png', 'p3.png', 'report.json']);
    assert.deepEqual(pngSize(Buffer.from(zip['p3.png'])), { width: 130, height: 80 });

    // 4. The client code, as written
    const logged = [];
    const req = (name) => (name === 'pyworker-cutout' ? require('..') : require(name));
    const AsyncFunction = (async () => {}).constructor;
    const photo = makePng(120, 90);
    const files = [0, 1, 2].map((i) => ({ name: `f${i}.png`, data: makePng(100, 70 + i) }));
    await new AsyncFunction('require', 'photo', 'files', 'console', local(clientJs))(req, photo, files, { log: (s) => logged.push(s) });
    assert.deepEqual(logged, ['1/3', '2/3', '3/3']);
    assert.ok(isPng(Buffer.from(zip['p0.png'])));

    // SIGTERM: the app and both consumers drain and exit 0.
    app.proc.kill('SIGTERM');
    assert.deepEqual(await app.exited, { code: 0, signal: null });
    for (const c of consumers) {
      c.proc.kill('SIGTERM');
      assert.deepEqual(await c.exited, { code: 0, signal: null });
    }
    assert.equal(redis.proc.exitCode, null, `redis up: ${redis.stderr}`);
  });
});
