'use strict';

// Issue 11: the Express router under heavy and hostile uploads. The server runs in a child Node
// process (test/fixtures/express-server.js), so its memory is measured apart from this client's.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const http = require('node:http');
const { makePng, isPng, faultFile, pidAlive, waitFor, BASE } = require('./helpers');

const png = makePng(160, 120);

const MiB = 1024 * 1024;

/** VmHWM (peak RSS) of a process, MiB. */
function vmHwmMb(pid) {
  const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
  return kb / 1024;
}

/** A multipart body around `bytes` (field "image"), built once and sent many times. */
function multipart(bytes, type = 'image/png') {
  const boundary = '----pyworker-test-boundary';
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="x"\r\n${type === null ? '' : `Content-Type: ${type}\r\n`}\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { body: Buffer.concat([head, bytes, tail]), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** POST a raw body; resolves {status, headers, body}. */
function post(port, pathname, body, contentType, extraHeaders = {}) {
  return fetch(`http://127.0.0.1:${port}${pathname}`, { method: 'POST', body, headers: { 'content-type': contentType, ...extraHeaders }, duplex: 'half' }).then(
    async (res) => ({ status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) }),
    (err) => ({ status: 0, error: err }),
  );
}

describe('express router: byte budget, multipart errors, sniffing, fallback', () => {
  let child;
  let port;

  before(async () => {
    const server = path.join(__dirname, 'fixtures', 'express-server.js');
    child = spawn(process.execPath, [server], {
      env: { ...process.env, PYWORKER_PYTHON: BASE.python, PYWORKER_POOL_SIZE: '1', PYWORKER_THREADS: '1', PYWORKER_FALLBACK: 'throw' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    port = await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => {
        const m = /listening on (\d+)/.exec(String(d));
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
    });
  });

  after(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('a valid PNG declared as application/octet-stream, image/jpg or with no type is served: the worker sniffs', async () => {
    for (const type of ['application/octet-stream', 'image/jpg', null]) {
      const { body, contentType } = multipart(png, type);
      const r = await post(port, '/api/remove-background', body, contentType);
      assert.equal(r.status, 200, `${type}: ${r.body}`);
      assert.ok(isPng(r.body));
    }
  });

  it('a malformed multipart body is a 400 with a JSON error code, not a 500', async () => {
    const { body, contentType } = multipart(png);
    const truncated = await post(port, '/api/remove-background', body.subarray(0, body.length - 40), contentType);
    assert.equal(truncated.status, 400, String(truncated.body));
    assert.equal(JSON.parse(truncated.body).error.code, 'bad_request');
    const noBoundary = await post(port, '/api/remove-background', body, 'multipart/form-data');
    assert.equal(noBoundary.status, 400, String(noBoundary.body));
    assert.equal(JSON.parse(noBoundary.body).error.code, 'bad_request');
  });

  it('50 concurrent maximum-size uploads: the server stays under 400 MB; the excess is 503 + Retry-After', async (t) => {
    // Before: 58 MB -> 929 MB (every upload buffered, maxQueue bounds jobs, not bytes).
    const big = Buffer.concat([png, Buffer.alloc(Math.floor(9.3 * MiB) - png.length, 1)]); // a PNG with trailing bytes
    const { body, contentType } = multipart(big);
    const replies = await Promise.all(Array.from({ length: 50 }, () => post(port, '/api/remove-background', body, contentType)));
    const statuses = replies.map((r) => r.status);
    const peak = vmHwmMb(child.pid);
    const count = (s) => statuses.filter((x) => x === s).length;
    t.diagnostic(`server peak RSS ${peak.toFixed(0)} MB; 200: ${count(200)}, 503: ${count(503)}, failed: ${count(0)}`);
    assert.ok(peak < 400, `server peak RSS ${peak.toFixed(0)} MB`);
    assert.ok(statuses.filter((s) => s === 200).length >= 1, statuses.join());
    const shed = replies.filter((r) => r.status === 503);
    assert.ok(shed.length >= 1, statuses.join());
    for (const r of shed) assert.ok(Number(r.headers.get('retry-after')) >= 1);
    assert.ok(statuses.every((s) => s === 200 || s === 503), statuses.join()); // every client gets a status, none a reset
  });
});

describe('express router with fallback: original', () => {
  it('a failed job answers 200 with the original bytes and X-Pyworker-Fallback naming the error code', async () => {
    const express = require('express');
    const { createPool } = require('pyworker-cutout');
    const { createRouter } = require('pyworker-cutout/express');
    const fault = faultFile();
    const pool = createPool({ ...BASE, size: 1, retries: 0, fallback: 'original', env: fault.env });
    const app = express();
    app.use('/api', createRouter({ pool }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      await pool.ready();
      fault.arm('crash'); // the worker dies under the job: a service failure, which the fallback covers
      const { body, contentType } = multipart(png);
      const r = await post(server.address().port, '/api/remove-background', body, contentType);
      assert.equal(r.status, 200, String(r.body));
      assert.equal(r.headers.get('x-pyworker-fallback'), 'worker_crashed');
      assert.deepEqual(r.body, png);
    } finally {
      await new Promise((r) => server.close(r));
      await pool.close({ force: true });
      fault.cleanup();
    }
  });
});

/**
 * POST `body` in 256 KiB pieces, one every 10 ms (a slow uplink); resolves {status, headers, body} or
 * {status: 0, error} when the connection failed (ECONNRESET, EPIPE) before a status arrived.
 */
function slowPost(port, pathname, body, contentType) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: pathname, method: 'POST', headers: { 'content-type': contentType, 'content-length': body.length } });
    let settled = false;
    const done = (r) => {
      if (!settled) (settled = true), resolve(r);
    };
    req.on('response', (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => done({ status: res.statusCode, headers: new Headers(res.headers), body: Buffer.concat(parts) }));
      res.on('error', (error) => done({ status: 0, error }));
    });
    req.on('error', (error) => done({ status: 0, error }));
    let sent = 0;
    const step = () => {
      if (req.destroyed) return;
      const piece = body.subarray(sent, sent + 256 * 1024);
      sent += piece.length;
      if (sent >= body.length) return req.end(piece);
      req.write(piece);
      setTimeout(step, 10);
    };
    step();
  });
}

/** The router on `pool`, in this process, on a free port. */
async function startApp(pool, routerOptions = {}) {
  const express = require('express');
  const { createRouter } = require('pyworker-cutout/express');
  const app = express();
  app.use('/api', createRouter({ pool, ...routerOptions }));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { port: server.address().port, close: () => new Promise((r) => server.close(r)) };
}

describe('express router: slow jobs, hang-ups, shed uploads', () => {
  it('a slow job answers 504 at the router timeout, its worker is SIGKILLed and replaced, requests behind it are served promptly', async (t) => {
    // Before (issue 11, finding 1): two slow uploads held both workers; the requests behind them waited 32 s.
    const fault = faultFile();
    const { createPool } = require('pyworker-cutout');
    // Warmed-up replacements (no --no-warmup): their first job is not slower than the router timeout.
    const pool = createPool({ ...BASE, args: [], size: 2, env: fault.env });
    const recycles = [];
    pool.on('recycle', (e) => recycles.push(e));
    const app = await startApp(pool, { timeoutMs: 5000 });
    try {
      await pool.ready();
      const { body, contentType } = multipart(png);
      const slow = [];
      const slowPids = [];
      for (let i = 0; i < 2; i++) {
        fault.arm('slow:60000'); // each of the two workers claims one: both are busy with a 60 s job
        const t0 = Date.now();
        slow.push(post(app.port, '/api/remove-background', body, contentType).then((r) => ({ ...r, ms: Date.now() - t0 })));
        slowPids.push(await fault.claimed());
      }
      assert.equal(new Set(slowPids).size, 2);
      const tNormal = Date.now();
      const normal = await Promise.all(Array.from({ length: 4 }, () => post(app.port, '/api/remove-background', body, contentType).then((r) => ({ ...r, ms: Date.now() - tNormal }))));
      const timedOut = await Promise.all(slow);
      t.diagnostic(`504s after ${timedOut.map((r) => r.ms).join(', ')} ms; normal requests served after ${normal.map((r) => r.ms).join(', ')} ms`);
      for (const r of timedOut) {
        assert.equal(r.status, 504, String(r.body));
        // A 504 job_timeout for a 60 s job is the router's timeout; it did not come early (a lower bound no load breaks).
        assert.equal(JSON.parse(r.body).error.code, 'job_timeout');
        assert.ok(r.ms >= 4900, `504 after ${r.ms} ms, router timeout 5000 ms`);
      }
      for (const r of normal) {
        assert.equal(r.status, 200, String(r.body));
        assert.ok(isPng(r.body));
        // Served by the replacements, not after the 60 s jobs by the workers that held them.
        assert.ok(!slowPids.includes(Number(r.headers.get('x-worker-pid'))));
      }
      assert.deepEqual(recycles.filter((e) => e.reason === 'timeout').map((e) => e.pid).sort(), [...slowPids].sort());
      assert.ok(await waitFor(() => slowPids.every((pid) => !pidAlive(pid)), 10_000), 'the slow workers were SIGKILLed');
    } finally {
      await app.close();
      await pool.close({ force: true });
      fault.cleanup();
    }
  });

  it('a client that hangs up mid-job frees its worker: the next request is served within a bound', async (t) => {
    // Before: the aborted job's worker went on with it (a 60 s job held the only worker for 60 s).
    const fault = faultFile();
    const { createPool } = require('pyworker-cutout');
    const pool = createPool({ ...BASE, size: 1, env: fault.env });
    const app = await startApp(pool);
    try {
      await pool.ready();
      const first = pool.stats().workers[0].pid;
      const { body, contentType } = multipart(png);
      fault.arm('slow:60000');
      const req = http.request({ host: '127.0.0.1', port: app.port, path: '/api/remove-background', method: 'POST', headers: { 'content-type': contentType, 'content-length': body.length } });
      const gone = new Promise((resolve) => req.on('error', resolve).on('close', resolve));
      req.end(body);
      assert.equal(await fault.claimed(), first, 'the job started');
      const t0 = Date.now();
      req.destroy(); // the client hangs up: its socket closes mid-job
      await gone;
      const r = await post(app.port, '/api/remove-background', body, contentType);
      t.diagnostic(`next request served ${Date.now() - t0} ms after the hang-up`);
      assert.equal(r.status, 200, String(r.body));
      // One worker, busy for 60 s: a reply from another process is the proof it was not waited for.
      assert.notEqual(Number(r.headers.get('x-worker-pid')), first, 'a replacement served it');
      assert.equal(pidAlive(first), false, 'the hung-up job was stopped with its worker');
      assert.equal(pool.stats().aborted, 1);
    } finally {
      await app.close();
      await pool.close({ force: true });
      fault.cleanup();
    }
  });

  it('many concurrent over-budget uploads each receive a status, 503 + Retry-After for the shed ones, never a reset', async (t) => {
    // Before: the 503 was written while the client was still sending, and the connection closed with
    // unread bytes: some clients got ECONNRESET/EPIPE instead of the status.
    const { createPool } = require('pyworker-cutout');
    const pool = createPool({ ...BASE, size: 1 });
    const app = await startApp(pool, { maxTotalUploadBytes: 12 * MiB });
    try {
      await pool.ready();
      const big = Buffer.concat([png, Buffer.alloc(Math.floor(9.3 * MiB) - png.length, 1)]);
      const { body, contentType } = multipart(big);
      // As phones send: the body in pieces over a few hundred ms, so most are still sending when shed.
      const replies = await Promise.all(Array.from({ length: 30 }, () => slowPost(app.port, '/api/remove-background', body, contentType)));
      const statuses = replies.map((r) => r.status);
      const count = (s) => statuses.filter((x) => x === s).length;
      const errors = replies.filter((r) => r.status === 0).map((r) => String(r.error?.code || r.error?.message));
      t.diagnostic(`200: ${count(200)}, 503: ${count(503)}, no status: ${count(0)} ${errors.join(' ')}`);
      assert.deepEqual(errors, [], 'every client received a status');
      assert.ok(count(503) >= 1 && count(200) >= 1, statuses.join());
      assert.equal(count(200) + count(503), 30, statuses.join());
      for (const r of replies.filter((x) => x.status === 503)) {
        assert.ok(Number(r.headers.get('retry-after')) >= 1);
        assert.equal(JSON.parse(r.body).error.code, 'queue_full');
      }
    } finally {
      await app.close();
      await pool.close({ force: true });
    }
  });
});
