'use strict';

// Capabilities said at start-up (docs/protocol.md#capabilities): an install whose weights folder has the
// cut-out model only serves cut-outs, and says at once (a Node warning, the ready event, /health WARNING)
// that ID photos need more, with the command that installs it. A real worker on a real, partial install.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
require('./helpers');
const { createPool } = require('..');
const { health } = require('../express');

function modelHome() {
  if (process.env.U2NET_HOME) return process.env.U2NET_HOME;
  return path.join(process.env.XDG_DATA_HOME || os.homedir(), '.u2net');
}

test('a missing capability is said at start-up: Node warning, ready event, health WARNING naming the fix', async (t) => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'pyworker-caps-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  fs.symlinkSync(path.join(modelHome(), 'u2netp.onnx'), path.join(home, 'u2netp.onnx'));
  const warnings = [];
  const onWarning = (w) => warnings.push(w);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  const pool = createPool({ size: 1, env: { U2NET_HOME: home } });
  t.after(() => pool.close());
  const ready = new Promise((resolve) => pool.once('ready', resolve));
  await pool.ready();
  const event = await ready;
  assert.equal(event.capabilities.cutout, true);
  assert.equal(event.capabilities.id_photo, false);
  assert.match(event.missing.id_photo, /models install modnet/);

  const h = health(pool, { warnMb: 1e6, criticalMb: 2e6 });
  assert.equal(h.status, 'WARNING');
  assert.equal(h.httpStatus, 200, 'the instance still serves cut-outs');
  assert.deepEqual(h.capabilities, event.capabilities);
  assert.ok(h.reasons.some((r) => r.startsWith('id_photo unavailable:') && r.includes('models install modnet')), h.reasons);

  await new Promise((resolve) => setImmediate(resolve)); // process 'warning' is emitted on the next tick
  const said = warnings.filter((w) => w.code === 'capability_unavailable');
  assert.equal(said.length, 1, warnings.map(String).join('\n'));
  assert.equal(said[0].name, 'PyworkerWarning');
  assert.match(said[0].message, /this install lacks id_photo: .*models install modnet/);
});
