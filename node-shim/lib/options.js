'use strict';

/**
 * Options: validation of per-request options (camelCase in JS, snake_case on
 * the wire), normalisation of pool options, and pool options read from the
 * environment.
 *
 * @module pyworker/options
 */

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { WorkerError } = require('./errors');

/** node-shim/.. : the pyworker repository when this package lives inside it. */
const REPO_ROOT = path.resolve(__dirname, '..', '..');
const MiB = 1024 * 1024;

/** Per-request keys handled by this client; they are not sent to the worker. */
const CLIENT_REQUEST_KEYS = new Set(['signal', 'timeoutMs', 'fallback']);

/** @param {string} key camelCase or snake_case */
function toSnake(key) {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** @param {string} key */
function toCamel(key) {
  return key.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

/**
 * Deep copy of a reply value with camelCase keys (values are left alone).
 * @param {unknown} value
 * @returns {any}
 */
function camelize(value) {
  if (Array.isArray(value)) return value.map(camelize);
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value)) {
    const out = /** @type {Record<string, unknown>} */ ({});
    for (const [k, v] of Object.entries(value)) out[toCamel(k)] = camelize(v);
    return out;
  }
  return value;
}

/** @param {string} message */
function badRequest(message) {
  return new WorkerError(message, { code: 'bad_request' });
}

/** @param {unknown} v */
function describe(v) {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (Array.isArray(v)) return `[${v.map(describe).join(', ')}]`;
  if (v !== null && typeof v === 'object') return 'an object';
  return String(v);
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const HEX_COLOR_RE = /^#[0-9a-fA-F]{6}$/;

/**
 * Validators of the worker's `remove` options (docs/protocol.md#options-of-remove),
 * by snake_case wire name. Each returns an error message or null.
 * @type {Record<string, (v: unknown) => string|null>}
 */
const VALIDATORS = {
  model: (v) => (typeof v === 'string' && NAME_RE.test(v) ? null : 'must be a model name such as "u2netp"'),
  max_size: (v) => (Number.isSafeInteger(v) && /** @type {number} */ (v) >= 0 ? null : 'must be an integer >= 0 (0 keeps the input size)'),
  bg_color: (v) => {
    if (v === null) return null;
    if (typeof v === 'string') return HEX_COLOR_RE.test(v) ? null : 'must be "#rrggbb", [r, g, b] or null';
    if (Array.isArray(v) && v.length === 3 && v.every((c) => Number.isInteger(c) && c >= 0 && c <= 255)) return null;
    return 'must be "#rrggbb", [r, g, b] with integers 0-255, or null';
  },
  format: (v) => (v === 'png' || v === 'webp' || v === 'jpeg' ? null : 'must be "png", "webp" or "jpeg"'),
  only_mask: (v) => (typeof v === 'boolean' ? null : 'must be a boolean'),
  refine: (v) => (typeof v === 'boolean' ? null : 'must be a boolean'),
  trim: (v) => (typeof v === 'boolean' ? null : 'must be a boolean'),
  padding: (v) => (Number.isSafeInteger(v) && /** @type {number} */ (v) >= 0 ? null : 'must be an integer >= 0'),
  crop: (v) => (v === null || v === 'face' ? null : 'must be "face" or null'),
  preset: (v) =>
    v === null || (typeof v === 'string' && NAME_RE.test(v)) ? null : 'must be a preset name such as "passport-35x45", or null',
  face_required: (v) => (typeof v === 'boolean' ? null : 'must be a boolean'),
};

/** Wire names of the options this client knows (others are forwarded as is). */
const KNOWN_OPTIONS = Object.freeze(Object.keys(VALIDATORS));

/** @param {unknown} v */
function isWireValue(v) {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every(isWireValue);
  return false;
}

/**
 * Split per-request options into the client's own (`signal`, `timeoutMs`,
 * `fallback`) and the worker's, validated and converted to snake_case.
 *
 * Known options are checked here, so that a mistake fails before anything is
 * sent (a `WorkerError` with code `bad_request`, like the worker's). Options
 * this client does not know yet are converted to snake_case and forwarded: the
 * worker rejects unknown keys with `bad_request`, so a typo still fails loudly,
 * and options a newer worker adds work without a new client.
 *
 * @param {Record<string, unknown>|undefined|null} options
 * @returns {{wire: Record<string, unknown>, signal?: AbortSignal, timeoutMs?: number, fallback?: 'throw'|'original'}}
 */
function parseRequestOptions(options) {
  /** @type {{wire: Record<string, unknown>, signal?: AbortSignal, timeoutMs?: number, fallback?: 'throw'|'original'}} */
  const out = { wire: {} };
  if (options === undefined || options === null) return out;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`options must be an object, got ${describe(options)}`);
  }
  /** @type {Record<string, string>} wire key -> the key the caller used */
  const seen = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (CLIENT_REQUEST_KEYS.has(key)) {
      if (key === 'signal') {
        if (!(value instanceof AbortSignal)) throw new TypeError('options.signal must be an AbortSignal');
        out.signal = value;
      } else if (key === 'timeoutMs') {
        if (typeof value !== 'number' || !(value > 0)) throw new TypeError('options.timeoutMs must be a number > 0 (milliseconds)');
        out.timeoutMs = value;
      } else if (key === 'fallback') {
        if (value !== 'throw' && value !== 'original') throw new TypeError('options.fallback must be "throw" or "original"');
        out.fallback = value;
      }
      continue;
    }
    const wireKey = toSnake(key);
    if (seen[wireKey] !== undefined) {
      throw badRequest(`options.${key} and options.${seen[wireKey]} are the same option; pass one`);
    }
    seen[wireKey] = key;
    const check = VALIDATORS[wireKey];
    if (check) {
      const problem = check(value);
      if (problem) throw badRequest(`options.${key} ${problem} (got ${describe(value)})`);
    } else if (!isWireValue(value)) {
      throw badRequest(`options.${key} must be null, a boolean, a finite number, a string or an array of those (got ${describe(value)})`);
    }
    out.wire[wireKey] = value;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Pool options

/** Default interpreter: the repository's .venv when present, else python3. */
function defaultPython() {
  const candidates =
    process.platform === 'win32'
      ? [path.join(REPO_ROOT, '.venv', 'Scripts', 'python.exe')]
      : [path.join(REPO_ROOT, '.venv', 'bin', 'python')];
  for (const c of candidates) if (fs.existsSync(c)) return c;
  return process.platform === 'win32' ? 'python' : 'python3';
}

/** True when the pyworker package sits next to node-shim (a checkout of the repo). */
function repoHasWorker() {
  return fs.existsSync(path.join(REPO_ROOT, 'pyworker'));
}

function cpuCount() {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * @param {Record<string, unknown>} o
 * @param {string} key
 * @param {{min?: number, gt?: number, max?: number, integer?: boolean, allowInfinity?: boolean}} spec
 * @param {number|undefined|null} dflt
 */
function num(o, key, spec, dflt) {
  const v = o[key];
  if (v === undefined) return dflt;
  if (v === null && dflt === null) return null;
  const ok =
    typeof v === 'number' &&
    !Number.isNaN(v) &&
    (Number.isFinite(v) ? !spec.integer || Number.isInteger(v) : Boolean(spec.allowInfinity) && v > 0) &&
    (spec.min === undefined || v >= spec.min) &&
    (spec.gt === undefined || v > spec.gt) &&
    (spec.max === undefined || v <= spec.max);
  if (!ok) {
    const what = [
      spec.integer ? 'an integer' : 'a number',
      spec.min !== undefined ? `>= ${spec.min}` : '',
      spec.gt !== undefined ? `> ${spec.gt}` : '',
      spec.max !== undefined ? `<= ${spec.max}` : '',
      spec.allowInfinity ? '(or Infinity)' : '',
    ]
      .filter(Boolean)
      .join(' ');
    throw new TypeError(`pool option ${key} must be ${what} (got ${describe(v)})`);
  }
  return /** @type {number} */ (v);
}

const POOL_KEYS = new Set([
  'python', 'args', 'env', 'cwd', 'model', 'size', 'memoryBudgetMb', 'workerMemoryMb', 'threads',
  'memoryLimitMb', 'maxJobsPerWorker', 'maxJobsJitter', 'jobTimeoutMs', 'startTimeoutMs', 'closeTimeoutMs',
  'maxQueue', 'retries', 'fallback', 'lazy', 'minWorkers', 'restartBackoffMs', 'maxRestartBackoffMs',
  'maxInputMb', 'maxSide', 'minSide', 'maxFrameMb', 'maxModels', 'logger', 'unref', 'maxReplyFrameMb',
]);

/**
 * Fill in the defaults of the pool options and check them.
 *
 * @param {Record<string, any>} [options]
 * @returns {import('../index').NormalizedPoolOptions}
 */
function normalizePoolOptions(options = {}) {
  if (options === null || typeof options !== 'object') throw new TypeError('pool options must be an object');
  for (const key of Object.keys(options)) {
    if (!POOL_KEYS.has(key) && options[key] !== undefined) {
      throw new TypeError(`unknown pool option "${key}" (known: ${[...POOL_KEYS].join(', ')})`);
    }
  }
  const o = options;
  const cores = cpuCount();
  // Default budget: 1 GiB, or a quarter of the machine's memory when that is less.
  const memoryBudgetMb = num(o, 'memoryBudgetMb', { min: 1 }, Math.min(1024, Math.floor(os.totalmem() / MiB / 4)));
  const workerMemoryMb = num(o, 'workerMemoryMb', { min: 1 }, 300);
  const size =
    num(o, 'size', { min: 1, max: 256, integer: true }, undefined) ??
    Math.max(1, Math.min(cores, Math.floor(/** @type {number} */ (memoryBudgetMb) / /** @type {number} */ (workerMemoryMb))));
  const threads = num(o, 'threads', { min: 1, max: 1024, integer: true }, undefined) ?? Math.max(1, Math.floor(cores / size));
  const lazy = o.lazy === undefined ? false : o.lazy;
  if (typeof lazy !== 'boolean') throw new TypeError('pool option lazy must be a boolean');
  const minWorkers = num(o, 'minWorkers', { min: 0, max: size, integer: true }, lazy ? 0 : size);

  const python = o.python === undefined ? defaultPython() : o.python;
  if (typeof python !== 'string' || python === '') throw new TypeError('pool option python must be a non-empty string (the interpreter to run)');
  const args = o.args === undefined ? [] : o.args;
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw new TypeError('pool option args must be an array of strings');
  if (o.env !== undefined && (o.env === null || typeof o.env !== 'object')) throw new TypeError('pool option env must be an object');
  if (o.cwd !== undefined && typeof o.cwd !== 'string') throw new TypeError('pool option cwd must be a string');
  if (o.model !== undefined && (typeof o.model !== 'string' || !NAME_RE.test(o.model))) {
    throw new TypeError('pool option model must be a model name such as "u2netp"');
  }
  const fallback = o.fallback === undefined ? 'throw' : o.fallback;
  if (fallback !== 'throw' && fallback !== 'original') throw new TypeError('pool option fallback must be "throw" or "original"');
  const unref = o.unref === undefined ? false : o.unref;
  if (typeof unref !== 'boolean') throw new TypeError('pool option unref must be a boolean');
  if (o.logger !== undefined && o.logger !== null && typeof o.logger !== 'function' && typeof o.logger !== 'object') {
    throw new TypeError('pool option logger must be a function(entry) or an object with debug/info/warn/error methods');
  }

  return {
    python,
    args,
    env: o.env,
    cwd: o.cwd,
    model: o.model,
    size,
    memoryBudgetMb: /** @type {number} */ (memoryBudgetMb),
    workerMemoryMb: /** @type {number} */ (workerMemoryMb),
    threads,
    memoryLimitMb: num(o, 'memoryLimitMb', { gt: 0 }, null),
    maxJobsPerWorker: /** @type {number} */ (num(o, 'maxJobsPerWorker', { min: 0, integer: true, allowInfinity: true }, 0)),
    maxJobsJitter: /** @type {number} */ (num(o, 'maxJobsJitter', { min: 0, integer: true }, 0)),
    jobTimeoutMs: /** @type {number} */ (num(o, 'jobTimeoutMs', { min: 1, allowInfinity: true }, 30_000)),
    startTimeoutMs: /** @type {number} */ (num(o, 'startTimeoutMs', { min: 1 }, 30_000)),
    closeTimeoutMs: /** @type {number} */ (num(o, 'closeTimeoutMs', { min: 0 }, 10_000)),
    maxQueue: /** @type {number} */ (num(o, 'maxQueue', { min: 0, integer: true, allowInfinity: true }, 64)),
    retries: /** @type {number} */ (num(o, 'retries', { min: 0, max: 100, integer: true }, 1)),
    fallback,
    lazy,
    minWorkers: /** @type {number} */ (minWorkers),
    restartBackoffMs: /** @type {number} */ (num(o, 'restartBackoffMs', { min: 0 }, 1_000)),
    maxRestartBackoffMs: /** @type {number} */ (num(o, 'maxRestartBackoffMs', { min: 0 }, 30_000)),
    maxInputMb: num(o, 'maxInputMb', { gt: 0 }, null),
    maxSide: num(o, 'maxSide', { min: 1, integer: true }, null),
    minSide: num(o, 'minSide', { min: 1, integer: true }, null),
    maxFrameMb: num(o, 'maxFrameMb', { gt: 0 }, null),
    maxModels: num(o, 'maxModels', { min: 1, integer: true }, null),
    maxReplyFrameMb: /** @type {number} */ (num(o, 'maxReplyFrameMb', { min: 1 }, 256)),
    logger: o.logger,
    unref,
  };
}

/**
 * The command line of one worker: `<python> -m pyworker [flags] [args]`.
 * @param {ReturnType<typeof normalizePoolOptions>} opts
 * @returns {string[]}
 */
function workerArgs(opts) {
  const a = ['-m', 'pyworker'];
  if (opts.model) a.push('--model', opts.model);
  a.push('--threads', String(opts.threads));
  if (opts.memoryLimitMb !== null && opts.memoryLimitMb !== undefined) a.push('--max-rss-mb', String(opts.memoryLimitMb));
  if (opts.maxFrameMb !== null && opts.maxFrameMb !== undefined) a.push('--max-frame-mb', String(opts.maxFrameMb));
  if (opts.maxInputMb !== null && opts.maxInputMb !== undefined) a.push('--max-input-mb', String(opts.maxInputMb));
  if (opts.maxSide !== null && opts.maxSide !== undefined) a.push('--max-side', String(opts.maxSide));
  if (opts.minSide !== null && opts.minSide !== undefined) a.push('--min-side', String(opts.minSide));
  if (opts.maxModels !== null && opts.maxModels !== undefined) a.push('--max-models', String(opts.maxModels));
  return a.concat(opts.args);
}

/**
 * Environment and working directory of the workers. Inside a checkout of the
 * repository the worker package is found through cwd = the repository root and
 * PYTHONPATH; elsewhere the interpreter must have pyworker installed.
 *
 * @param {ReturnType<typeof normalizePoolOptions>} opts
 * @returns {{env: NodeJS.ProcessEnv, cwd: string|undefined}}
 */
function workerSpawnEnv(opts) {
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, ...(opts.env || {}), PYTHONUNBUFFERED: '1' };
  let cwd = opts.cwd;
  if (repoHasWorker()) {
    if (cwd === undefined) cwd = REPO_ROOT;
    const pp = env.PYTHONPATH ? env.PYTHONPATH.split(path.delimiter) : [];
    if (!pp.includes(REPO_ROOT)) env.PYTHONPATH = [REPO_ROOT, ...pp].join(path.delimiter);
  }
  return { env, cwd };
}

// ---------------------------------------------------------------------------
// Environment

/**
 * Environment variables read by `poolOptionsFromEnv`, with the pool option each sets.
 * @type {Record<string, [string, 'string'|'int'|'number'|'bool'|'args'|'limit']>}
 */
const ENV_VARS = {
  PYWORKER_PYTHON: ['python', 'string'],
  PYWORKER_ARGS: ['args', 'args'],
  PYWORKER_CWD: ['cwd', 'string'],
  PYWORKER_MODEL: ['model', 'string'],
  PYWORKER_POOL_SIZE: ['size', 'int'],
  PYWORKER_MIN_WORKERS: ['minWorkers', 'int'],
  PYWORKER_LAZY: ['lazy', 'bool'],
  PYWORKER_THREADS: ['threads', 'int'],
  PYWORKER_MEMORY_BUDGET_MB: ['memoryBudgetMb', 'number'],
  PYWORKER_WORKER_MEMORY_MB: ['workerMemoryMb', 'number'],
  PYWORKER_MEMORY_LIMIT_MB: ['memoryLimitMb', 'number'],
  PYWORKER_MAX_JOBS_PER_WORKER: ['maxJobsPerWorker', 'limit'],
  PYWORKER_MAX_JOBS_JITTER: ['maxJobsJitter', 'int'],
  PYWORKER_JOB_TIMEOUT_MS: ['jobTimeoutMs', 'limit'],
  PYWORKER_START_TIMEOUT_MS: ['startTimeoutMs', 'number'],
  PYWORKER_CLOSE_TIMEOUT_MS: ['closeTimeoutMs', 'number'],
  PYWORKER_MAX_QUEUE: ['maxQueue', 'limit'],
  PYWORKER_RETRIES: ['retries', 'int'],
  PYWORKER_FALLBACK: ['fallback', 'string'],
  PYWORKER_MAX_INPUT_MB: ['maxInputMb', 'number'],
  PYWORKER_MAX_SIDE: ['maxSide', 'int'],
  PYWORKER_MIN_SIDE: ['minSide', 'int'],
  PYWORKER_MAX_FRAME_MB: ['maxFrameMb', 'number'],
  PYWORKER_MAX_MODELS: ['maxModels', 'int'],
};

/**
 * Pool options from PYWORKER_* environment variables (empty ones are ignored).
 * Numbers that are "limits" also accept `inf`/`infinity`/`unlimited`.
 *
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
    switch (kind) {
      case 'string':
        out[key] = s;
        break;
      case 'args':
        out[key] = s.split(/\s+/);
        break;
      case 'bool':
        if (/^(1|true|yes|on)$/i.test(s)) out[key] = true;
        else if (/^(0|false|no|off)$/i.test(s)) out[key] = false;
        else throw bad('a boolean (1/0, true/false)');
        break;
      case 'int':
        if (!/^\d+$/.test(s)) throw bad('a non-negative integer');
        out[key] = Number(s);
        break;
      case 'number':
        if (!/^\d+(\.\d+)?$/.test(s)) throw bad('a non-negative number');
        out[key] = Number(s);
        break;
      case 'limit':
        if (/^(inf|infinity|unlimited)$/i.test(s)) out[key] = Infinity;
        else if (/^\d+(\.\d+)?$/.test(s)) out[key] = Number(s);
        else throw bad('a non-negative number or "infinity"');
        break;
    }
  }
  return out;
}

module.exports = {
  REPO_ROOT,
  KNOWN_OPTIONS,
  ENV_VARS,
  toSnake,
  toCamel,
  camelize,
  parseRequestOptions,
  normalizePoolOptions,
  workerArgs,
  workerSpawnEnv,
  poolOptionsFromEnv,
  defaultPython,
  cpuCount,
};
