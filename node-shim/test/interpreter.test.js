'use strict';

// Which Python runs the workers when the `python` option is not given:
// PYWORKER_PYTHON (checked), else the `pyworker` command on PATH; each way of
// failing has its own message.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { findPython, scriptInterpreter } = require('../lib/interpreter');
const { createPool, WorkerError } = require('..');
const { PYTHON } = require('./helpers');

function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pyworker-interp-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('PYWORKER_PYTHON naming a Python with the package is used as is (absolute)', () => {
  assert.equal(findPython({ PYWORKER_PYTHON: PYTHON, PATH: '' }), PYTHON);
});

test('a relative PYWORKER_PYTHON is resolved against the directory the app started in', () => {
  const rel = path.relative(process.cwd(), PYTHON);
  assert.ok(!path.isAbsolute(rel));
  assert.equal(findPython({ PYWORKER_PYTHON: rel, PATH: '' }), PYTHON);
});

test('the `pyworker` command on PATH: its own interpreter, from its #! line', () => {
  const bin = path.dirname(PYTHON); // .venv/bin holds the `pyworker` command (make setup: pip install -e .)
  assert.ok(fs.existsSync(path.join(bin, 'pyworker')), 'make setup installs the pyworker command');
  const found = findPython({ PATH: `/nonexistent${path.delimiter}${bin}` });
  // python or python3, as pip wrote it: the venv's own interpreter, never a resolved symlink.
  assert.equal(path.dirname(found), bin);
  assert.match(path.basename(found), /^python3?$/);
});

test("pip's long-path form of a console script is understood", (t) => {
  const dir = tempDir(t);
  const script = path.join(dir, 'pyworker');
  fs.writeFileSync(script, `#!/bin/sh\n'''exec' "/a very/long path/bin/python" "$0" "$@"\n' '''\nimport sys\n`);
  assert.equal(scriptInterpreter(script), '/a very/long path/bin/python');
  fs.writeFileSync(script, '#!/opt/env/bin/python3.11\nimport sys\n');
  assert.equal(scriptInterpreter(script), '/opt/env/bin/python3.11');
});

test('missing interpreter, missing package, nothing on PATH: three different messages', (t) => {
  const startFailed = (re) => (err) => err instanceof WorkerError && err.code === 'start_failed' && re.test(err.message);
  assert.throws(() => findPython({ PYWORKER_PYTHON: '/nonexistent/bin/python3', PATH: '' }), startFailed(/PYWORKER_PYTHON=\/nonexistent\/bin\/python3: no executable file there/));
  // A real Python without the package (the system one; the cwd has no pyworker/ folder).
  const dir = tempDir(t);
  const cwd = process.cwd();
  process.chdir(dir);
  t.after(() => process.chdir(cwd));
  assert.throws(() => findPython({ PYWORKER_PYTHON: '/usr/bin/python3', PATH: '' }), startFailed(/is a Python without the pyworker package \(No module named pyworker\)/));
  assert.throws(() => findPython({ PATH: dir }), startFailed(/no "pyworker" command on PATH and PYWORKER_PYTHON is not set/));
  // A console script whose environment was deleted.
  fs.writeFileSync(path.join(dir, 'pyworker'), '#!/deleted/env/bin/python\n', { mode: 0o755 });
  assert.throws(() => findPython({ PATH: dir }), startFailed(/names \/deleted\/env\/bin\/python, which is gone/));
});

test('createPool fails fast, before spawning anything, when there is no worker to run', (t) => {
  const saved = process.env.PYWORKER_PYTHON;
  const savedPath = process.env.PATH;
  t.after(() => {
    process.env.PYWORKER_PYTHON = saved;
    process.env.PATH = savedPath;
  });
  delete process.env.PYWORKER_PYTHON;
  process.env.PATH = '/nonexistent';
  assert.throws(() => createPool({ size: 1 }), { code: 'start_failed', message: /no "pyworker" command on PATH/ });
});

test('a pool cwd that is not a directory is refused at once, naming it (not blamed on the interpreter)', () => {
  assert.throws(() => createPool({ size: 1, cwd: 'no-such-dir' }), new RegExp(`pool option cwd: ${path.join(process.cwd(), 'no-such-dir').replace(/[/.]/g, '\\$&')} is not a directory`));
});
