'use strict';

/**
 * Which Python runs the workers, when the `python` pool option is not given.
 *
 * 1. `PYWORKER_PYTHON`: a Python that has the pyworker package installed
 *    (checked once: it must exist and `import pyworker` must find the package);
 * 2. else the `pyworker` command on PATH (what installing the pyworker-cutout wheel puts in
 *    an environment's bin/): the interpreter it was installed for, read from
 *    its `#!` line, so the pool still runs `<python> -m pyworker`.
 *
 * Nothing is guessed from folder names: the working directory of the workers
 * is the app's own, and a checkout of the repository is found like any other
 * install (`make setup` installs it, editable, into its .venv).
 *
 * Each failure throws a `WorkerError` with code `start_failed` and a message
 * that says which of the three is missing and what to run.
 *
 * @module pyworker-cutout/interpreter
 */

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { WorkerError } = require('./errors');

const COMMAND = 'pyworker';
// The Python distribution is pyworker-cutout (import name pyworker), of the same version as this package. The
// hint names the wheel a checkout builds (README, "Use it in your app"), never a bare name for pip to look up:
// `pyworker` on the Python index is someone else's project (README, Decisions).
const WHEEL = `pyworker_cutout-${require('../package.json').version}-py3-none-any.whl`;
const INSTALL_HINT =
  `install pyworker-cutout, the Python half, into a Python environment (pip install ${WHEEL}, the wheel ` +
  'built in a checkout by "python -m build --wheel", README "Use it in your app") ' +
  'and put that environment\'s bin/ on PATH, or set PYWORKER_PYTHON to its python';

/** Results of the package check by interpreter path: spawning Python once per pool would cost ~30 ms each time. */
const checked = new Map();

/** @param {string} message */
function startFailed(message) {
  return new WorkerError(message, { code: 'start_failed' });
}

/** @param {string} file */
function isExecutableFile(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * A command on PATH (absolute path), or null. Empty PATH entries (the cwd) are skipped: never guess that.
 * @param {NodeJS.ProcessEnv} env
 * @param {string} name
 */
function whichIn(env, name) {
  for (const dir of (env.PATH || '').split(path.delimiter)) {
    if (dir && isExecutableFile(path.join(dir, name))) return path.join(dir, name);
  }
  return null;
}

/**
 * The interpreter a console script was written for: `#!/path/python`, or pip's
 * (distlib's) form for long paths, `#!/bin/sh` then `'''exec' "/path/python" "$0" "$@"`.
 * @param {string} script
 * @returns {string|null}
 */
function scriptInterpreter(script) {
  let head;
  try {
    const fd = fs.openSync(script, 'r');
    try {
      const buf = Buffer.alloc(4096);
      head = buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
  const lines = head.split('\n');
  const shebang = /^#!\s*(\S+)/.exec(lines[0] || '');
  if (!shebang) return null;
  if (/python[0-9.]*$/.test(shebang[1])) return shebang[1];
  const exec = /^'''exec' "?([^"]+?)"? "\$0" "\$@"/m.exec(lines.slice(1, 4).join('\n'));
  return exec ? exec[1] : null;
}

/**
 * Throw unless `python` can run `-m pyworker` (checked once per path).
 * @param {string} python absolute path
 * @param {string} source how it was named, for the message (e.g. "PYWORKER_PYTHON=/x")
 */
function checkHasPackage(python, source) {
  if (!isExecutableFile(python)) throw startFailed(`${source}: no executable file there; ${INSTALL_HINT}`);
  let ok = checked.get(python);
  if (ok === undefined) {
    // find_spec does not import the package: a few ms beyond the interpreter's own start.
    const r = spawnSync(python, ['-c', 'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec("pyworker") else 3)'], {
      stdio: 'ignore',
      timeout: 30_000,
    });
    if (r.error) throw startFailed(`${source}: could not run it (${r.error.message}); ${INSTALL_HINT}`);
    ok = r.status === 0;
    if (r.status !== 0 && r.status !== 3) throw startFailed(`${source}: it exited with ${r.status ?? r.signal} when asked for the pyworker package; is it a Python?`);
    checked.set(python, ok);
  }
  if (!ok) {
    throw startFailed(
      `${source} is a Python without the pyworker package (No module named pyworker): ` +
        `run "${python} -m pip install /path/to/${WHEEL}" (pyworker-cutout, the wheel built in a checkout), ` +
        'or point PYWORKER_PYTHON at the Python that has it',
    );
  }
}

/**
 * The interpreter for `<python> -m pyworker`: PYWORKER_PYTHON, else the one
 * behind the `pyworker` command on PATH. Throws a `start_failed` WorkerError
 * naming what is missing.
 *
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {string} an absolute path
 */
function findPython(env = process.env) {
  const named = (env.PYWORKER_PYTHON || '').trim();
  if (named) {
    // Resolved once, against the directory the app started in, so a later chdir cannot break it.
    const resolved = named.includes(path.sep) ? path.resolve(named) : whichIn(env, named);
    if (!resolved) throw startFailed(`PYWORKER_PYTHON=${named}: no such command on PATH; ${INSTALL_HINT}`);
    checkHasPackage(resolved, `PYWORKER_PYTHON=${named}`);
    return resolved;
  }
  const command = whichIn(env, COMMAND);
  if (!command) {
    throw startFailed(`no "${COMMAND}" command on PATH and PYWORKER_PYTHON is not set: ${INSTALL_HINT}`);
  }
  const python = scriptInterpreter(command);
  if (!python) {
    throw startFailed(`${command} does not start with a "#!" line naming its Python; set PYWORKER_PYTHON to the Python that has pyworker`);
  }
  if (!isExecutableFile(python)) {
    throw startFailed(`${command} names ${python}, which is gone (a deleted environment?); reinstall pyworker, or set PYWORKER_PYTHON`);
  }
  return python;
}

module.exports = { findPython, scriptInterpreter, whichIn };
