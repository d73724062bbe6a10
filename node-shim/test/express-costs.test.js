'use strict';

// Issue 11: the Express router under heavy and hostile uploads. The server runs in a child Node
// process (test/fixtures/express-server.js), so its memory is measured apart from this client's.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { makePng, isPng, faultFile, BASE } = require('./helpers');

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
    assert.ok(statuses.every((s) => s === 200 || s === 503 || s === 0), statuses.join());
  });
});

describe('express router with fallback: original', () => {
  it('a failed job answers 200 with the original bytes and X-Pyworker-Fallback naming the error code', async () => {
    const express = require('express');
    const { createPool } = require('pyworker-node');
    const { createRouter } = require('pyworker-node/express');
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
