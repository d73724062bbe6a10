'use strict';

/**
 * The pool's settings, each declared once (in the spirit of gunicorn's
 * config.py): name, type and range, default, environment variable, worker
 * flag, and the words of the docs. normalizePoolOptions, poolOptionsFromEnv and
 * the worker's command line derive from SETTINGS; `make contract` writes the
 * README's tables from it and tests/test_contract.py checks index.d.ts.
 *
 * @module pyworker/settings
 */

const os = require('node:os');
const { findPython, cpuCount } = require('./spawn');
const { describe, checkTimer } = require('./request-options');

/** What a start-up model name looks like (the worker then says whether it knows it). */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const MiB = 1024 * 1024;

/**
 * @typedef {object} Setting
 * @property {string} name
 * @property {'int'|'number'|'bool'|'string'|'name'|'choice'|'args'|'object'|'logger'} type
 * @property {number|boolean|string|null|((o: Record<string, any>) => unknown)} [default] a value, or computed from the settings above it
 * @property {string} defaultDoc the default, as the README shows it
 * @property {string} doc
 * @property {number} [min] @property {number} [gt] @property {number|((o: Record<string, any>) => number)} [max]
 * @property {boolean} [infinity] Infinity is accepted (and `inf`/`infinity`/`unlimited` in the environment)
 * @property {boolean} [timer] milliseconds given to setTimeout: at most MAX_TIMER_MS (else RangeError)
 * @property {string[]} [choices]
 * @property {string} [env] PYWORKER_* variable
 * @property {string} [flag] the worker flag it is passed as, when set
 */

/** @type {Setting[]} in dependency order: a computed default reads only the settings above it */
const SETTINGS = [
  // No `env`: PYWORKER_PYTHON is read by findPython (interpreter.js), which checks it has the package.
  { name: 'python', type: 'string', default: () => findPython(process.env),
    defaultDoc: '`PYWORKER_PYTHON` (checked), else the interpreter of the `pyworker` command on PATH',
    doc: 'a Python that has pyworker installed, run as `<python> -m pyworker`; used as given' },
  { name: 'args', type: 'args', default: () => [], env: 'PYWORKER_ARGS', defaultDoc: '`[]`',
    doc: "extra worker flags, after the derived ones (a later flag wins), e.g. `['--no-warmup']`; env: space-separated" },
  { name: 'env', type: 'object', defaultDoc: '', doc: 'environment of the workers, merged over `process.env`' },
  { name: 'cwd', type: 'string', env: 'PYWORKER_CWD', defaultDoc: "the app's own", doc: 'working directory of the workers (a relative one is resolved when the pool is created)' },
  { name: 'model', type: 'name', env: 'PYWORKER_MODEL', flag: '--model', defaultDoc: "worker's (`u2netp`)", doc: 'start-up model' },
  { name: 'memoryBudgetMb', type: 'number', min: 1, env: 'PYWORKER_MEMORY_BUDGET_MB',
    default: () => Math.min(1024, Math.floor(os.totalmem() / MiB / 4)), defaultDoc: 'min(1024, ¼ of RAM)', doc: 'memory the pool may use, for the default size' },
  { name: 'workerMemoryMb', type: 'number', min: 1, default: 300, env: 'PYWORKER_WORKER_MEMORY_MB', defaultDoc: '300',
    doc: 'expected peak RSS of one worker (u2netp measures ~280 MB at its peak)' },
  { name: 'size', type: 'int', min: 1, max: 256, env: 'PYWORKER_POOL_SIZE',
    default: (o) => Math.max(1, Math.min(cpuCount(), Math.floor(o.memoryBudgetMb / o.workerMemoryMb))),
    defaultDoc: '`memoryBudgetMb / workerMemoryMb`, capped by the CPU count, ≥ 1', doc: 'number of workers' },
  { name: 'threads', type: 'int', min: 1, max: 1024, env: 'PYWORKER_THREADS', flag: '--threads',
    default: (o) => Math.max(1, Math.floor(cpuCount() / o.size)), defaultDoc: 'max(1, floor(cores / size))', doc: 'onnxruntime threads per worker' },
  { name: 'lazy', type: 'bool', default: false, env: 'PYWORKER_LAZY', defaultDoc: '`false`', doc: 'start workers on first use instead of at once' },
  { name: 'minWorkers', type: 'int', min: 0, max: (o) => o.size, env: 'PYWORKER_MIN_WORKERS',
    default: (o) => (o.lazy ? 0 : o.size), defaultDoc: '`size` (0 when lazy)', doc: 'workers kept running' },
  { name: 'idleTimeoutMs', type: 'number', min: 0, infinity: true, default: 60_000, env: 'PYWORKER_IDLE_TIMEOUT_MS', defaultDoc: '60000',
    doc: "a worker idle this long is stopped while more than `minWorkers` run (piscina's `idleTimeout`); Infinity: never" },
  { name: 'memoryLimitMb', type: 'number', gt: 0, default: null, env: 'PYWORKER_MEMORY_LIMIT_MB', flag: '--max-rss-mb', defaultDoc: 'none',
    doc: 'recycle a worker whose reported RSS is above it after its current job (the worker also retires itself, exit 75)' },
  { name: 'maxJobsPerWorker', type: 'int', min: 0, infinity: true, default: 0, env: 'PYWORKER_MAX_JOBS_PER_WORKER', defaultDoc: '0 (never)',
    doc: "recycle a worker after N jobs (gunicorn's `max_requests`)" },
  { name: 'maxJobsJitter', type: 'int', min: 0, default: 0, env: 'PYWORKER_MAX_JOBS_JITTER', defaultDoc: '0',
    doc: "N + random(0..jitter) per worker (gunicorn's `max_requests_jitter`)" },
  { name: 'jobTimeoutMs', type: 'number', timer: true, min: 1, infinity: true, default: 30_000, env: 'PYWORKER_JOB_TIMEOUT_MS', defaultDoc: '30000',
    doc: 'longer on a worker → `TimeoutError`; the worker is SIGKILLed and replaced' },
  { name: 'pingTimeoutMs', type: 'number', timer: true, min: 1, infinity: true, default: 10_000, env: 'PYWORKER_PING_TIMEOUT_MS', defaultDoc: '10000',
    doc: 'a busy worker gets an urgent ping every `pingTimeoutMs / 2`, answered even mid-job; no answer within it → the worker cannot run (stopped, stuck holding the GIL): SIGKILLed, replaced, its job retried; Infinity: never' },
  { name: 'startTimeoutMs', type: 'number', timer: true, min: 1, default: 30_000, env: 'PYWORKER_START_TIMEOUT_MS', defaultDoc: '30000', doc: 'time for a worker to send `ready`' },
  { name: 'closeTimeoutMs', type: 'number', timer: true, min: 0, default: 10_000, env: 'PYWORKER_CLOSE_TIMEOUT_MS', defaultDoc: '10000',
    doc: 'grace for a worker to exit after `shutdown` before SIGKILL' },
  { name: 'maxQueue', type: 'int', min: 0, infinity: true, default: 64, env: 'PYWORKER_MAX_QUEUE', defaultDoc: '64',
    doc: 'jobs waiting for a worker; beyond it, `QueueFullError` at once' },
  { name: 'maxQueueBytes', type: 'number', min: 0, infinity: true, default: 64 * MiB, env: 'PYWORKER_MAX_QUEUE_BYTES', defaultDoc: '67108864 (64 MiB)',
    doc: "image bytes waiting for a worker (a 512 MB host's share: six 10 MiB uploads); beyond it, `QueueFullError` at once" },
  { name: 'retries', type: 'int', min: 0, max: 100, default: 1, env: 'PYWORKER_RETRIES', defaultDoc: '1',
    doc: 'resend a job whose worker died (crash, signal, closed stdout, garbage on stdout)' },
  { name: 'fallback', type: 'choice', choices: ['throw', 'original'], default: 'throw', env: 'PYWORKER_FALLBACK', defaultDoc: "`'throw'`",
    doc: "`'original'`: resolve worker-side failures with the input, [marked](#fallback); the caller's own errors always reject" },
  { name: 'restartBackoffMs', type: 'number', timer: true, min: 0, default: 1_000, env: 'PYWORKER_RESTART_BACKOFF_MS', defaultDoc: '1000',
    doc: 'back-off after a failed start, doubling' },
  { name: 'maxRestartBackoffMs', type: 'number', timer: true, min: 0, default: 30_000, env: 'PYWORKER_MAX_RESTART_BACKOFF_MS', defaultDoc: '30000', doc: 'longest back-off' },
  { name: 'maxFrameMb', type: 'number', gt: 0, default: null, env: 'PYWORKER_MAX_FRAME_MB', flag: '--max-frame-mb', defaultDoc: "worker's", doc: 'largest request frame' },
  { name: 'maxInputMb', type: 'number', gt: 0, default: null, env: 'PYWORKER_MAX_INPUT_MB', flag: '--max-input-mb', defaultDoc: "worker's", doc: 'largest image file' },
  { name: 'maxSide', type: 'int', min: 1, default: null, env: 'PYWORKER_MAX_SIDE', flag: '--max-side', defaultDoc: "worker's", doc: 'largest width or height' },
  { name: 'minSide', type: 'int', min: 1, default: null, env: 'PYWORKER_MIN_SIDE', flag: '--min-side', defaultDoc: "worker's", doc: 'smallest width or height' },
  { name: 'maxModels', type: 'int', min: 1, default: null, env: 'PYWORKER_MAX_MODELS', flag: '--max-models', defaultDoc: "worker's", doc: 'sessions kept loaded per worker' },
  { name: 'maxReplyFrameMb', type: 'number', min: 1, default: 256, defaultDoc: '256', doc: 'largest reply frame the client accepts' },
  { name: 'logger', type: 'logger', defaultDoc: 'silent (`DEBUG=pyworker`: JSON lines on stderr)', doc: 'where log entries go' },
  { name: 'unref', type: 'bool', default: false, defaultDoc: '`false` (`true` for the default pool)', doc: 'an idle pool does not keep Node running' },
];

/**
 * What is wrong with a value of a setting, or null.
 * @param {Setting} s @param {unknown} v @param {Record<string, any>} o the settings above it
 */
function problem(s, v, o) {
  switch (s.type) {
    case 'bool':
      return typeof v === 'boolean' ? null : 'a boolean';
    case 'string':
      return typeof v === 'string' && v !== '' ? null : 'a non-empty string';
    case 'name':
      return typeof v === 'string' && NAME_RE.test(v) ? null : 'a model name such as "u2netp"';
    case 'choice':
      return /** @type {string[]} */ (s.choices).includes(/** @type {string} */ (v)) ? null : s.choices?.map((c) => `"${c}"`).join(' or ') || '';
    case 'args':
      return Array.isArray(v) && v.every((a) => typeof a === 'string') ? null : 'an array of strings';
    case 'object':
      return v !== null && typeof v === 'object' ? null : 'an object';
    case 'logger':
      return v === null || typeof v === 'function' || typeof v === 'object' ? null : 'a function(entry) or an object with debug/info/warn/error methods';
  }
  const max = typeof s.max === 'function' ? s.max(o) : s.max;
  const ok =
    typeof v === 'number' &&
    !Number.isNaN(v) &&
    (Number.isFinite(v) ? s.type === 'number' || Number.isInteger(v) : Boolean(s.infinity) && v > 0) &&
    (s.min === undefined || v >= s.min) &&
    (s.gt === undefined || v > s.gt) &&
    (max === undefined || v <= max);
  if (ok) return null;
  const words = [s.type === 'int' ? 'an integer' : 'a number'];
  if (s.min !== undefined) words.push(`>= ${s.min}`);
  if (s.gt !== undefined) words.push(`> ${s.gt}`);
  if (max !== undefined) words.push(`<= ${max}`);
  if (s.infinity) words.push('(or Infinity)');
  return words.join(' ');
}

/**
 * Fill in the defaults of the pool options and check them.
 * @param {Record<string, any>} [options]
 * @returns {import('../index').NormalizedPoolOptions}
 */
function normalizePoolOptions(options = {}) {
  if (options === null || typeof options !== 'object') throw new TypeError('pool options must be an object');
  // A Map (or any class instance) has no own keys to read: every setting would silently be the default.
  if (Object.getPrototypeOf(options) !== Object.prototype && Object.getPrototypeOf(options) !== null) {
    throw new TypeError(`pool options must be a plain object, got ${options.constructor?.name ?? 'an object'}`);
  }
  for (const key of Object.keys(options)) {
    if (options[key] !== undefined && !SETTINGS.some((s) => s.name === key)) {
      throw new TypeError(`unknown pool option "${key}" (known: ${SETTINGS.map((s) => s.name).join(', ')})`);
    }
  }
  /** @type {Record<string, any>} */
  const o = {};
  for (const s of SETTINGS) {
    const v = options[s.name];
    if (v === undefined || (v === null && s.default === null)) {
      o[s.name] = typeof s.default === 'function' ? s.default(o) : s.default;
      continue;
    }
    const what = problem(s, v, o);
    if (what) throw new TypeError(`pool option ${s.name} must be ${what} (got ${describe(v)})`);
    if (s.timer) checkTimer(`pool option ${s.name}`, v, Boolean(s.infinity));
    o[s.name] = v;
  }
  return /** @type {import('../index').NormalizedPoolOptions} */ (o);
}

/**
 * The command line of one worker: `-m pyworker`, the flags of the settings that have one, then `args`.
 * @param {Record<string, any>} opts normalized
 * @returns {string[]}
 */
function workerArgs(opts) {
  const a = ['-m', 'pyworker'];
  for (const s of SETTINGS) if (s.flag && opts[s.name] !== null && opts[s.name] !== undefined) a.push(s.flag, String(opts[s.name]));
  return a.concat(opts.args);
}

/** PYWORKER_* variable -> [pool option, how its text is read]. */
const ENV_VARS = Object.fromEntries(
  SETTINGS.filter((s) => s.env).map((s) => [s.env, [s.name, s.infinity ? 'limit' : s.type === 'int' || s.type === 'number' || s.type === 'bool' || s.type === 'args' ? s.type : 'string']]),
);

/**
 * Pool options from PYWORKER_* environment variables (empty ones are ignored).
 * Numbers that accept Infinity also accept `inf`/`infinity`/`unlimited`.
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {Record<string, unknown>}
 */
function poolOptionsFromEnv(env = process.env) {
  /** @type {Record<string, unknown>} */
  const out = {};
  for (const [name, [key, kind]] of Object.entries(ENV_VARS)) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    const s = raw.trim();
    /** @param {string} what */
    const bad = (what) => new TypeError(`environment variable ${name}=${JSON.stringify(raw)} must be ${what}`);
    if (kind === 'string') out[key] = s;
    else if (kind === 'args') out[key] = s.split(/\s+/);
    else if (kind === 'bool') {
      if (/^(1|true|yes|on)$/i.test(s)) out[key] = true;
      else if (/^(0|false|no|off)$/i.test(s)) out[key] = false;
      else throw bad('a boolean (1/0, true/false)');
    } else if (kind === 'limit' && /^(inf|infinity|unlimited)$/i.test(s)) out[key] = Infinity;
    else if (kind === 'int' ? /^\d+$/.test(s) : /^\d+(\.\d+)?$/.test(s)) out[key] = Number(s);
    else throw bad(kind === 'int' ? 'a non-negative integer' : kind === 'limit' ? 'a non-negative number or "infinity"' : 'a non-negative number');
  }
  return out;
}

/** The table as data, for `make contract` (README tables) and the contract test. */
function describeSettings() {
  return SETTINGS.map((s) => ({ name: s.name, type: s.type, env: s.env || null, flag: s.flag || null, defaultDoc: s.defaultDoc, doc: s.doc }));
}

module.exports = { SETTINGS, ENV_VARS, normalizePoolOptions, workerArgs, poolOptionsFromEnv, describeSettings };
