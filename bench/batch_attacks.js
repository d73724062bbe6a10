#!/usr/bin/env node
'use strict';

// Issue 22's attacks on the batch router and the queue, each on fresh processes, with what each cost:
//   node bench/batch_attacks.js            (1-2 minutes on 2 cores; `--only TEXT` runs the rows whose name has it)
// The app (node-shim/test/fixtures/batch-server.js, default router options, a pool of one worker, or the queue
// client with BATCH_REDIS) runs in its own process; its peak memory is /proc VmHWM, its longest event-loop block
// is measured by the app itself (the main thread's CPU time between two turns of a 10 ms timer,
// node-shim/test/loop-block.js; GET /stats). The pool's worker and the consumer (with
// its worker) are read the same way, and Redis by its VmHWM and INFO used_memory_peak. The photos run on the
// stand-in model (node-shim/test/helpers.js): what is measured is the path around the worker; the worker's own
// attacks (AVIF, HEIC) are bench/attacks.py's rows. Prints a table and `uptime`; docs/reliability.md quotes it.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { spawn, execFileSync } = require('node:child_process');
const NODE_SHIM = path.join(__dirname, '..', 'node-shim');
const { createQueueClient } = require(NODE_SHIM);
const { makePng, makeNoisyPng, standInModelHome, PYTHON } = require(path.join(NODE_SHIM, 'test', 'helpers'));
const { craftZip, zip64Declaring, deflatedZeros } = require(path.join(NODE_SHIM, 'test', 'zip-craft'));
const { startRedis } = require(path.join(NODE_SHIM, 'test', 'redis-helper'));
const { startConsumer } = require(path.join(NODE_SHIM, 'test', 'queue-helpers'));

const MiB = 1024 * 1024;
const FIXTURE = path.join(NODE_SHIM, 'test', 'fixtures', 'batch-server.js');
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;

const hwmMb = (pid) => {
  try {
    return Number(/^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
  } catch {
    return NaN;
  }
};
const rssMb = (pid) => Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const children = (pid) => {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};
const resetHwm = (pid) => {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    /* gone */
  }
};
const load = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');

async function startApp(env) {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-batch-app-'));
  const child = spawn(process.execPath, [FIXTURE], { cwd, env: { ...process.env, ...env, PYWORKER_PYTHON: PYTHON, PYWORKER_THREADS: '1' }, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      const m = /listening on (\d+)/.exec(String(d));
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`app exited ${code}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  return {
    child,
    base,
    /** {maxBlockMs} since the last reset; `reset`: start again from now. */
    async stats(reset = false) {
      return (await fetch(`${base}/stats${reset ? '?reset=1' : ''}`)).json();
    },
    stop() {
      if (child.exitCode === null) child.kill('SIGKILL');
      fs.rmSync(cwd, { recursive: true, force: true });
    },
  };
}

function form(files, fields = {}) {
  const fd = new FormData();
  for (const [name, bytes] of files) fd.append('photos', new Blob([bytes]), name);
  for (const [k, v] of Object.entries(fields)) fd.append(k, v);
  return fd;
}

const post = (app, files, fields) => fetch(`${app.base}/api/batches`, { method: 'POST', body: form(files, fields) });

async function untilEnd(app, events) {
  const text = await (await fetch(`${app.base}${events}`)).text();
  const end = text.split('\n\n').find((b) => b.startsWith('event: end'));
  return { end: JSON.parse(end.split('\ndata: ')[1]), bytes: Buffer.byteLength(text) };
}

/** A body declared `length` bytes whose headers only are sent: the status the app answers. */
function declared(app, length) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${app.base}/api/batches`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=b', 'content-length': String(length) } });
    req.on('response', (r) => {
      r.resume();
      resolve(r.statusCode);
      req.destroy();
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

/** Each row: [name, run(app) -> what happened]; the app is fresh for each. */
const APP_ROWS = [
  ['1. 128-byte ZIP64 declaring 2^28 entries', async (app) => `${(await post(app, [['x.zip', zip64Declaring(2 ** 28)]])).status}`],
  [
    '2. 100 entries over one 256 MiB zero stream',
    async (app) => {
      const zeros = await deflatedZeros(256 * MiB);
      const entries = [{ name: 'p0.jpg', raw: zeros, size: 1000 }];
      for (let i = 1; i < 100; i++) entries.push({ name: `p${i}.jpg`, sharesWith: 0, size: 1000 });
      return `${(await post(app, [['bomb.zip', craftZip(entries)]])).status}`;
    },
  ],
  [
    '2b. one entry declaring 1000 B over 256 MiB of zeros',
    async (app) => {
      const res = await post(app, [['z.zip', craftZip([{ name: 'p.jpg', raw: await deflatedZeros(256 * MiB), size: 1000 }])]]);
      const body = await res.json();
      const { end } = await untilEnd(app, body.events);
      const state = await (await fetch(`${app.base}/api/batches/${body.id}`)).json();
      return `${res.status}, ${end.failed} failed ${state.items[0].error?.code}`;
    },
  ],
  [
    '2c. 10 noisy photos of 9 MiB in one zip',
    async (app) => {
      const entries = Array.from({ length: 10 }, (_, i) => ({ name: `n${i}.png`, data: makeNoisyPng(1730, 1730, i + 1), method: 0 }));
      const res = await post(app, [['n.zip', craftZip(entries)]], { maxSize: '0' });
      const body = await res.json();
      const { end } = await untilEnd(app, body.events);
      return `${res.status}, ${end.done}/${end.total} done`;
    },
  ],
  [
    '3. 4 zips of one 499 MiB entry at once; 4 bodies of 5 x 99 MiB',
    async (app) => {
      const zip = craftZip([
        { name: 'huge.jpg', raw: await deflatedZeros(499 * MiB), size: 499 * MiB },
        { name: 'small.png', data: makePng(80, 60) },
      ]);
      const replies = await Promise.all(Array.from({ length: 4 }, () => post(app, [['z.zip', zip]])));
      const ends = await Promise.all(replies.map(async (r) => (await untilEnd(app, (await r.json()).events)).end));
      const bodies = await Promise.all(Array.from({ length: 4 }, () => declared(app, 5 * 99 * MiB)));
      return `${replies.map((r) => r.status).join('/')} (${ends.map((e) => `${e.done}+${e.failed}`).join(' ')}); ${bodies.join('/')}`;
    },
  ],
  [
    '3b. 4 uploads of 90 MiB at once',
    async (app) => {
      const photos = Array.from({ length: 10 }, (_, i) => [`n${i}.png`, makeNoisyPng(1730, 1730, i + 1)]);
      // A refused upload is answered 503 once its body is read; a client error (EPIPE) is shown as such.
      const replies = await Promise.all(Array.from({ length: 4 }, () => post(app, photos).catch((e) => ({ status: (e.cause && e.cause.code) || e.message }))));
      const statuses = replies.map((r) => r.status);
      for (const r of replies) if (r.status === 202) await untilEnd(app, (await r.json()).events);
      return statuses.join('/');
    },
  ],
  [
    '3c. 3 uploads of 83 MiB at once (within maxTotalBytes together)',
    async (app) => {
      const photos = Array.from({ length: 10 }, (_, i) => [`n${i}.png`, makeNoisyPng(1700, 1700, i + 1)]);
      const replies = await Promise.all(Array.from({ length: 3 }, () => post(app, photos).catch((e) => ({ status: (e.cause && e.cause.code) || e.message }))));
      const statuses = replies.map((r) => r.status);
      for (const r of replies) if (r.status === 202) await untilEnd(app, (await r.json()).events);
      return statuses.join('/');
    },
  ],
  [
    '3d. 3 zips of 10 stored 8.3 MiB photos at once (within maxTotalBytes together)',
    async (app) => {
      const zip = craftZip(Array.from({ length: 10 }, (_, i) => ({ name: `n${i}.png`, data: makeNoisyPng(1700, 1700, i + 1), method: 0 })));
      const replies = await Promise.all(Array.from({ length: 3 }, () => post(app, [['n.zip', zip]]).catch((e) => ({ status: (e.cause && e.cause.code) || e.message }))));
      const statuses = replies.map((r) => r.status);
      for (const r of replies) if (r.status === 202) await untilEnd(app, (await r.json()).events);
      return statuses.join('/');
    },
  ],
  [
    '4. 4 clients download results.zip of a 6 x 9 MB batch at once',
    async (app) => {
      const photos = Array.from({ length: 6 }, (_, i) => [`n${i}.png`, makeNoisyPng(1500, 1500, i + 1)]);
      const body = await (await post(app, photos, { maxSize: '0' })).json();
      await untilEnd(app, body.events);
      resetHwm(app.child.pid); // the download's own cost, not the batch's
      const zips = await Promise.all(Array.from({ length: 4 }, async () => (await (await fetch(`${app.base}${body.results}`)).arrayBuffer()).byteLength));
      return `4 x ${(zips[0] / MiB).toFixed(0)} MB`;
    },
  ],
  [
    '4b. 2 batches of 8 x 9 MB results (maxSize 0), then 4 clients that do not read results.zip',
    async (app) => {
      const ids = [];
      for (let b = 0; b < 2; b++) {
        const photos = Array.from({ length: 8 }, (_, i) => [`b${b}-${i}.png`, makeNoisyPng(1500, 1500, 10 * b + i + 1)]);
        const body = await (await post(app, photos, { maxSize: '0' })).json();
        await untilEnd(app, body.events);
        ids.push(body);
      }
      const held = rssMb(app.child.pid); // what the finished batches pin
      // Four downloads whose clients read nothing: the app must wait on back-pressure, not buffer the zip.
      const stalled = await Promise.all(
        Array.from({ length: 4 }, (_, i) => new Promise((resolve, reject) => {
          const req = http.get(`${app.base}${ids[i % 2].results}`, (res) => {
            res.pause();
            resolve(req);
          });
          req.on('error', reject);
        })),
      );
      await new Promise((r) => setTimeout(r, 3000)); // a bench's nap: long enough for an unbounded writer to fill up
      const during = rssMb(app.child.pid);
      for (const req of stalled) req.destroy();
      return `RSS after the batches ${held.toFixed(0)} MB; with 4 stalled downloads ${during.toFixed(0)} MB`;
    },
  ],
  [
    '4c. 500 names of 65,535 control characters',
    async (app) => {
      const png = makePng(80, 60);
      const entries = Array.from({ length: 500 }, (_, i) => ({ name: `${'\u0001'.repeat(65535 - 8)}${String(i).padStart(4, '0')}.png`, data: png }));
      const res = await post(app, [['names.zip', craftZip(entries)]]);
      const body = await res.json();
      const { bytes } = await untilEnd(app, body.events);
      const state = Buffer.byteLength(await (await fetch(`${app.base}/api/batches/${body.id}`)).text());
      return `${res.status}; batch JSON ${(state / 1024).toFixed(0)} KB, SSE replay ${(bytes / 1024).toFixed(0)} KB`;
    },
  ],
  [
    '7. 20 batches x 50 photos from one client, then another 5-photo batch',
    async (app) => {
      const ones = await Promise.all(Array.from({ length: 20 }, (_, b) => post(app, Array.from({ length: 50 }, (_, i) => [`b${b}-${i}.png`, makePng(60 + (i % 7), 60)]))));
      const other = await (await post(app, Array.from({ length: 5 }, (_, i) => [`o${i}.png`, makePng(70 + i, 60)]))).json();
      const { end } = await untilEnd(app, other.events);
      const all = await Promise.all(ones.map(async (r) => (await untilEnd(app, (await r.json()).events)).end));
      return `the other: ${end.done}/5 done; the 20: ${all.reduce((n, e) => n + e.done, 0)}/1000 done`;
    },
  ],
  [
    '9b. 1,000 batches of one photo',
    async (app) => {
      const statuses = {};
      for (let i = 0; i < 1000; i++) {
        const r = await post(app, [[`p${i}.png`, makePng(60, 60)]]);
        statuses[r.status] = (statuses[r.status] || 0) + 1;
        await r.arrayBuffer();
      }
      return Object.entries(statuses)
        .map(([s, n]) => `${n} x ${s}`)
        .join(', ');
    },
  ],
];

async function appRows(rows, standIn) {
  const out = [];
  for (const [name, run] of rows) {
    const app = await startApp(standIn.env);
    try {
      // The pool's worker is up (its first job): its start-up is not the attack's.
      await untilEnd(app, (await (await post(app, [['warm.png', makePng(60, 60)]])).json()).events);
      const worker = children(app.child.pid)[0];
      resetHwm(app.child.pid);
      if (worker) resetHwm(worker);
      await app.stats(true);
      const t0 = Date.now();
      const what = await run(app);
      const { maxBlockMs } = await app.stats();
      out.push({ name, what, ms: Date.now() - t0, app: hwmMb(app.child.pid), worker: worker ? hwmMb(worker) : NaN, blockMs: maxBlockMs, load: load() });
      console.error(JSON.stringify(out.at(-1)));
    } finally {
      app.stop();
    }
  }
  return out;
}

/** Attack 5 on the queue: the app's queue client, a consumer process with one worker, a redis-server. */
async function queueRows(standIn) {
  const out = [];
  const redis = await startRedis();
  const consumer = await startConsumer({ redis: redis.url, queue: 'attack', poolSize: 1, env: standIn.env });
  const app = await startApp({ ...standIn.env, BATCH_REDIS: redis.url, BATCH_QUEUE: 'attack' });
  const info = () => Number(/used_memory_peak:(\d+)/.exec(execFileSync('redis-cli', ['-p', String(redis.port), 'info', 'memory'], { encoding: 'utf8' }))[1]) / MiB;
  const measure = async (name, run) => {
    const pids = [app.child.pid, consumer.pid, ...children(consumer.pid), redis.pid];
    for (const p of pids) resetHwm(p);
    await app.stats(true);
    const t0 = Date.now();
    const what = await run();
    const { maxBlockMs } = await app.stats();
    const [a, c, w, r] = pids.map(hwmMb);
    out.push({ name, what, ms: Date.now() - t0, app: a, consumer: c, worker: w, redis: r, redisPeak: info(), blockMs: maxBlockMs, load: load() });
    console.error(JSON.stringify(out.at(-1)));
  };
  try {
    await untilEnd(app, (await (await post(app, [['warm.png', makePng(60, 60)]])).json()).events);
    await measure('5. queue: a 497 KB zip holding a 499 MiB photo', async () => {
      const zip = craftZip([{ name: 'huge.png', raw: await deflatedZeros(499 * MiB), size: 499 * MiB }]);
      const res = await post(app, [['z.zip', zip]]);
      const body = await res.json();
      await untilEnd(app, body.events);
      const state = await (await fetch(`${app.base}/api/batches/${body.id}`)).json();
      return `${(zip.length / 1024).toFixed(0)} KB zip: ${res.status}, ${state.items[0].error?.code}`;
    });
    await measure('5b. queue: q.remove of a 40 MB input', async () => {
      const q = createQueueClient({ redis: redis.url, queue: 'attack' });
      try {
        const err = await q.remove(Buffer.alloc(40 * MiB, 1)).catch((e) => e);
        return `${err.code}`;
      } finally {
        await q.close();
      }
    });
  } finally {
    app.stop();
    await consumer.stop('SIGKILL');
    await redis.stop();
  }
  return out;
}

const f0 = (x) => (Number.isFinite(x) ? x.toFixed(0) : '-');

async function main() {
  const standIn = standInModelHome();
  try {
    const rows = await appRows(
      APP_ROWS.filter(([name]) => !only || name.includes(only)),
      standIn,
    );
    if (!only || '5. queue'.includes(only) || only.startsWith('5')) rows.push(...(await queueRows(standIn)));
    console.log('| attack | outcome | wall ms | app peak MB | worker peak MB | consumer peak MB | Redis VmHWM / used_memory_peak MB | longest event-loop block ms | load |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      const redis = r.redis === undefined ? '-' : `${f0(r.redis)} / ${f0(r.redisPeak)}`;
      console.log(`| ${r.name} | ${r.what} | ${r.ms} | ${f0(r.app)} | ${f0(r.worker)} | ${f0(r.consumer)} | ${redis} | ${r.blockMs} | ${r.load} |`);
    }
    console.log(`\n${execFileSync('uptime', { encoding: 'utf8' }).trim()}`);
  } finally {
    standIn.cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
