'use strict';

// The pool speaks one protocol version (lib/contract.json, from pyworker/__init__.py): a worker announcing
// another one in `ready` is refused, because its replies may not have the shapes index.d.ts promises
// (docs/protocol.md#versions). The worker is real; tests/faults/sitecustomize.py makes it announce 1.
const { it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { version } = require('../package.json');
const contract = require('../lib/contract.json');
const { REPO, testPool, pidAlive, waitFor, makePng, SMALL } = require('./helpers');

const OLD = { PYWORKER_TEST_PROTOCOL: '1', PYTHONPATH: path.join(REPO, 'tests', 'faults') };

it('the contract names the protocol this package speaks', () => {
  assert.equal(contract.protocol, 2);
});

it('a worker of another protocol: start_failed naming both versions and the fix, the worker stopped', async (t) => {
  const pool = testPool(t, { size: 1, env: OLD, restartBackoffMs: 60_000 });
  const exits = [];
  pool.on('exit', (e) => exits.push(e));
  const re = new RegExp(`speaks protocol 1; pyworker-cutout ${version.replace(/\./g, '\\.')} speaks protocol 2: install pyworker ${version}`);
  await assert.rejects(pool.ready(), (err) => err.code === 'start_failed' && re.test(err.message));
  // A request during the back-off fails at once with the same reason instead of waiting.
  await assert.rejects(pool.remove(makePng(80, 60), SMALL), (err) => err.code === 'start_failed' && re.test(err.message));
  assert.ok(await waitFor(() => exits.length === 1), 'the refused worker exits');
  assert.equal(exits[0].reason, 'protocol_mismatch');
  assert.equal(exits[0].code, 0); // SIGTERM on an idle worker: a clean exit
  assert.ok(!pidAlive(exits[0].pid));
});

it('a worker of this protocol is accepted; the ready event carries the number', async (t) => {
  const pool = testPool(t, { size: 1 });
  const ready = new Promise((resolve) => pool.once('ready', resolve));
  await pool.ready();
  const event = await ready;
  assert.equal(event.protocol, contract.protocol);
  // The limits index.d.ts's ReadyEvent declares, no more, no fewer.
  const declared = ['maxDecodeMb', 'maxFrameMb', 'maxInputMb', 'maxJpegScans', 'maxOutputMp', 'maxPixelsSide', 'maxRssMb', 'minPixelsSide'];
  assert.deepEqual(Object.keys(event.limits).sort(), declared);
  const r = await pool.removeWithMeta(makePng(80, 60), SMALL);
  assert.equal(r.meta.modelFallback, null);
});
