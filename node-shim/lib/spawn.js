'use strict';

/**
 * How a worker process is started: the interpreter, its command line, its
 * environment and working directory.
 *
 * @module pyworker/spawn
 */

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** node-shim/.. : the pyworker repository when this package lives inside it. */
const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** Default interpreter: the repository's .venv when present, else python3. */
function defaultPython() {
  const venv =
    process.platform === 'win32' ? path.join(REPO_ROOT, '.venv', 'Scripts', 'python.exe') : path.join(REPO_ROOT, '.venv', 'bin', 'python');
  if (fs.existsSync(venv)) return venv;
  return process.platform === 'win32' ? 'python' : 'python3';
}

function cpuCount() {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * Environment and working directory of the workers. Inside a checkout of the
 * repository the worker package is found through cwd = the repository root and
 * PYTHONPATH; elsewhere the interpreter must have pyworker installed.
 *
 * @param {{env?: Record<string, string|undefined>, cwd?: string}} opts
 * @returns {{env: NodeJS.ProcessEnv, cwd: string|undefined}}
 */
function workerSpawnEnv(opts) {
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, ...(opts.env || {}), PYTHONUNBUFFERED: '1' };
  let cwd = opts.cwd;
  if (fs.existsSync(path.join(REPO_ROOT, 'pyworker'))) {
    if (cwd === undefined) cwd = REPO_ROOT;
    const pp = env.PYTHONPATH ? env.PYTHONPATH.split(path.delimiter) : [];
    if (!pp.includes(REPO_ROOT)) env.PYTHONPATH = [REPO_ROOT, ...pp].join(path.delimiter);
  }
  return { env, cwd };
}

module.exports = { REPO_ROOT, defaultPython, cpuCount, workerSpawnEnv };
