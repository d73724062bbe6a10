'use strict';

/**
 * Per-request options: camelCase in JS, snake_case on the wire, checked by the
 * worker's own rules (contract.json, generated from pyworker/pipeline/options.py)
 * so that Node and Python give the same verdict on every value.
 *
 * @module pyworker/request-options
 */

const contract = require('./contract.json');
const { WorkerError } = require('./errors');

/** Per-request keys handled by this client; they are not sent to the worker. */
const CLIENT_REQUEST_KEYS = new Set(['signal', 'timeoutMs', 'fallback']);
const HEX_RE = new RegExp(contract.patterns.hex);

/**
 * @typedef {{name: string, kind: 'bool'|'int'|'choice'|'color'|'str', nullable: boolean,
 *   choices?: string[], aliases?: Record<string, string>, min?: number, max?: number|string|null}} OptionRule
 */
/**
 * Node's longest timer (2^31-1 ms, ~24.8 days): setTimeout clamps anything above to 1 ms, so a
 * 3e9 ms timeout fired at once. One rule for every timeout, pool option or per request: a finite
 * value above it is a RangeError; Infinity (where accepted) means no limit.
 */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Throw a RangeError for a finite timeout Node cannot wait for (see MAX_TIMER_MS).
 * @param {string} what @param {number} ms @param {boolean} infinityOk
 */
function checkTimer(what, ms, infinityOk) {
  if (Number.isFinite(ms) && ms > MAX_TIMER_MS) {
    const alt = infinityOk ? ', or Infinity for no limit' : '';
    throw new RangeError(`${what} must be at most ${MAX_TIMER_MS} ms (2^31-1, Node's longest timer)${alt}; got ${ms}`);
  }
}

/** @type {Map<string, OptionRule>} */
const RULES = new Map(/** @type {OptionRule[]} */ (contract.options).map((o) => [o.name, o]));

/** Wire names of the options this client knows (others are forwarded as is). */
const KNOWN_OPTIONS = Object.freeze([...RULES.keys()]);

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

/** @param {unknown} v @returns {string} */
function describe(v) {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (Array.isArray(v)) return `[${v.map(describe).join(', ')}]`;
  if (v !== null && typeof v === 'object') return 'an object';
  return String(v);
}

/**
 * The upper bound of an int option: a number, or the worker's limit of that name when known.
 * @param {OptionRule} rule @param {Record<string, unknown>|null|undefined} limits
 */
function upper(rule, limits) {
  if (typeof rule.max !== 'string') return rule.max ?? null;
  const v = limits ? limits[rule.max] : undefined;
  return typeof v === 'number' ? v : null;
}

/**
 * What a value must be, in the worker's words (pyworker/pipeline/options.py `expects`).
 * @param {OptionRule} rule @param {Record<string, unknown>|null|undefined} limits
 */
function expects(rule, limits) {
  if (rule.kind === 'bool') return 'true or false';
  if (rule.kind === 'int') {
    const hi = upper(rule, limits);
    return hi === null ? `an integer >= ${rule.min}` : `an integer from ${rule.min} to ${hi}`;
  }
  if (rule.kind === 'color') return 'null, "#rrggbb" or [r, g, b] with 0-255';
  if (rule.kind === 'str') return `a string${rule.nullable ? ' or null' : ''}`;
  const listed = (rule.choices || []).map((c) => `"${c}"`).concat(rule.nullable ? ['null'] : []);
  return listed.length > 1 ? `${listed.slice(0, -1).join(', ')} or ${listed[listed.length - 1]}` : listed[0];
}

/**
 * True when the worker accepts `v` for this option (same rules as options.py `check`).
 * @param {OptionRule} rule @param {unknown} v @param {Record<string, unknown>|null|undefined} limits
 */
function accepts(rule, v, limits) {
  if (v === null) return rule.nullable;
  switch (rule.kind) {
    case 'bool':
      return typeof v === 'boolean';
    case 'int': {
      const hi = upper(rule, limits);
      return Number.isSafeInteger(v) && /** @type {number} */ (v) >= (rule.min ?? 0) && (hi === null || /** @type {number} */ (v) <= hi);
    }
    case 'choice':
      return typeof v === 'string' && (rule.choices || []).includes(rule.aliases?.[v] ?? v);
    case 'str':
      return typeof v === 'string';
    case 'color':
      if (typeof v === 'string') return HEX_RE.test(v);
      return Array.isArray(v) && v.length === 3 && v.every((c) => Number.isInteger(c) && c >= 0 && c <= 255);
  }
  return false;
}

/** @param {unknown} v */
function isWireValue(v) {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every(isWireValue);
  return false;
}

/**
 * Split per-request options into the client's own (`signal`, `timeoutMs`,
 * `fallback`) and the worker's, checked and converted to snake_case.
 *
 * Known options are checked by the worker's rules, so that a mistake fails
 * before anything is sent (a `WorkerError` with code `bad_request`, as the
 * worker would answer). A bound that is a worker flag (max_size <= --max-side)
 * is checked once `limits` (the `ready` frame's) are known, else by the worker.
 * Options this client does not know are forwarded: the worker rejects unknown
 * keys with `bad_request`, and options a newer worker adds work at once.
 *
 * @param {Record<string, unknown>|undefined|null} options
 * @param {Record<string, unknown>|null} [limits] the worker's `ready` limits
 * @returns {{wire: Record<string, unknown>, signal?: AbortSignal, timeoutMs?: number, fallback?: 'throw'|'original'}}
 */
function parseRequestOptions(options, limits = null) {
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
    if (key === 'signal') {
      if (!(value instanceof AbortSignal)) throw new TypeError('options.signal must be an AbortSignal');
      out.signal = value;
    } else if (key === 'timeoutMs') {
      if (typeof value !== 'number' || !(value > 0)) throw new TypeError('options.timeoutMs must be a number > 0 (milliseconds)');
      checkTimer('options.timeoutMs', value, true);
      out.timeoutMs = value;
    } else if (key === 'fallback') {
      if (value !== 'throw' && value !== 'original') throw new TypeError('options.fallback must be "throw" or "original"');
      out.fallback = value;
    }
    if (CLIENT_REQUEST_KEYS.has(key)) continue;
    const wireKey = toSnake(key);
    if (seen[wireKey] !== undefined) {
      throw new WorkerError(`options.${key} and options.${seen[wireKey]} are the same option; pass one`, { code: 'bad_request' });
    }
    seen[wireKey] = key;
    const rule = RULES.get(wireKey);
    if (rule ? !accepts(rule, value, limits) : !isWireValue(value)) {
      const what = rule ? expects(rule, limits) : 'null, a boolean, a finite number, a string or an array of those';
      throw new WorkerError(`options.${key} must be ${what} (got ${describe(value)})`, { code: 'bad_request' });
    }
    out.wire[wireKey] = value;
  }
  return out;
}

module.exports = { KNOWN_OPTIONS, MAX_TIMER_MS, checkTimer, toSnake, toCamel, camelize, describe, parseRequestOptions };
