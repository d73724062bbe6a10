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
const { findPython } = require('./interpreter');

function cpuCount() {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * Environment and working directory of the workers: the app's own unless the
 * `env`/`cwd` options say otherwise. Nothing is guessed from folder names: the
 * interpreter has pyworker installed (interpreter.js).
 *
 * @param {{env?: Record<string, string|undefined>, cwd?: string}} opts
 * @returns {{env: NodeJS.ProcessEnv, cwd: string|undefined}}
 */
function workerSpawnEnv(opts) {
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, ...(opts.env || {}), PYTHONUNBUFFERED: '1' };
  if (opts.cwd === undefined) return { env, cwd: undefined };
  // Resolved once, when the pool is created: relative to where the app started, not to a later chdir; a
  // missing directory is named here instead of surfacing as a spawn ENOENT that seems to blame the interpreter.
  const cwd = path.resolve(opts.cwd);
  if (!fs.statSync(cwd, { throwIfNoEntry: false })?.isDirectory()) throw new TypeError(`pool option cwd: ${cwd} is not a directory`);
  return { env, cwd };
}

module.exports = { findPython, cpuCount, workerSpawnEnv };
