'use strict';

// The Worker reports facts about its process as events (lib/worker.js), which the pool's one state per worker
// (lib/slot.js) follows: 'retiring' before the reply that says it settles, 'stopping' once with its reason
// whatever stops it, 'exit' last. Real worker processes.

const { it } = require('node:test');
const assert = require('node:assert/strict');
const { Worker } = require('../lib/worker');
const { PYTHON, makePng, faultFile, SMALL } = require('./helpers');

/**
 * A Worker on this repository's Python, its events recorded in order.
 * @param {string[]} [flags] @param {Record<string, string>} [env]
 */
function recorded(flags = [], env = {}) {
  const w = new Worker({
    python: process.env.PYWORKER_PYTHON || PYTHON,
    args: ['-m', 'pyworker', '--no-warmup', ...flags],
    env: { ...process.env, ...env },
    cwd: undefined,
    startTimeoutMs: 60_000,
    maxReplyFrameBytes: 64 * 1024 * 1024,
    log: () => {},
  });
  /** @type {Array<[string, unknown]>} */
  const events = [];
  for (const name of ['ready', 'retiring', 'stopping', 'exit']) w.on(name, (arg) => events.push([name, name === 'exit' ? arg.reason : name === 'ready' ? null : arg]));
  return { w, events };
}

it("a reply saying `retiring` is reported before it settles; the worker's own exit 75 is not a stop", async (t) => {
  // --max-rss-mb 1: every job leaves the worker above its ceiling, so its first reply says retiring.
  const { w, events } = recorded(['--max-rss-mb', '1']);
  t.after(() => w.kill());
  await w.start();
  const reply = await w.request({ id: 1, op: 'remove', image: makePng(80, 60), options: { max_size: SMALL.maxSize } });
  events.push(['reply', reply.retiring]);
  const info = await w.exited;
  assert.deepEqual(events, [['ready', null], ['retiring', reply.stats], ['reply', true], ['exit', null]]);
  assert.equal(info.code, 75);
});

it("'stopping' is said once, with the reason, whether the worker is stopped, then killed", async (t) => {
  const { w, events } = recorded();
  t.after(() => w.kill());
  await w.start();
  w.stop({ graceMs: 60_000 });
  w.kill('SIGKILL', 'timeout'); // a stop that takes too long: still one 'stopping'
  const info = await w.exited;
  assert.deepEqual(events, [['ready', null], ['stopping', 'shutdown'], ['exit', 'timeout']]);
});

it("a worker breaking the protocol says 'stopping' (protocol_error) before its request fails", async (t) => {
  // The fault: bytes that are no frame on stdout during the job (a stray print() from a library).
  const fault = faultFile();
  const { w, events } = recorded([], fault.env);
  t.after(() => w.kill());
  await w.start();
  fault.arm('garbage');
  const err = await w.request({ id: 1, op: 'remove', image: makePng(80, 60), options: { max_size: SMALL.maxSize } }).catch((e) => e);
  events.push(['rejected', err.code]);
  await w.exited;
  assert.deepEqual(events, [['ready', null], ['stopping', 'protocol_error'], ['rejected', 'protocol_error'], ['exit', 'protocol_error']]);
});
