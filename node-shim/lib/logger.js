'use strict';

/**
 * Where log entries go: the workers' stderr lines (each a JSON object, see
 * docs/protocol.md#logs) and this client's own events (spawn, exit, recycle).
 *
 * Silent by default; `DEBUG=pyworker` (or `pyworker*`, `*`) prints every entry
 * as one JSON line on process.stderr. A `logger` pool option takes over:
 * either a function called with each entry, or an object with
 * debug/info/warn/error methods (console, pino, winston...), called as
 * `logger[level](entry)`.
 *
 * @module pyworker/logger
 */

/** @typedef {{level: 'debug'|'info'|'warn'|'error', event: string, [key: string]: unknown}} LogEntry */

/**
 * True when the DEBUG environment variable enables the `pyworker` namespace
 * (the `debug` package's syntax: comma/space separated, `*` wildcards, `-` to exclude).
 * @param {string|undefined} value
 */
function debugEnabled(value = process.env.DEBUG) {
  if (!value) return false;
  let enabled = false;
  for (const part of value.split(/[\s,]+/).filter(Boolean)) {
    const negate = part.startsWith('-');
    const pattern = negate ? part.slice(1) : part;
    const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
    if (re.test('pyworker')) enabled = !negate;
  }
  return enabled;
}

const NOOP = () => {};

/** @param {string} level */
function normalizeLevel(level) {
  if (level === 'warning') return 'warn';
  if (level === 'critical' || level === 'fatal') return 'error';
  return level === 'debug' || level === 'info' || level === 'warn' || level === 'error' ? level : 'info';
}

/**
 * @param {unknown} option the pool's `logger` option
 * @returns {(entry: LogEntry) => void}
 */
function makeLogger(option) {
  const sink = makeSink(option);
  if (sink === NOOP) return NOOP;
  // Client entries get a timestamp like the workers' lines have.
  return (entry) => sink(entry.ts ? entry : { ts: new Date().toISOString(), ...entry });
}

/**
 * @param {unknown} option
 * @returns {(entry: LogEntry) => void}
 */
function makeSink(option) {
  if (typeof option === 'function') {
    return (entry) => {
      try {
        option(entry);
      } catch {
        /* a logger must not break the pool */
      }
    };
  }
  if (option && typeof option === 'object') {
    const target = /** @type {Record<string, any>} */ (option);
    return (entry) => {
      const fn = target[entry.level] || target.log || target.info;
      try {
        if (typeof fn === 'function') fn.call(target, entry);
      } catch {
        /* ignore */
      }
    };
  }
  if (option === undefined && debugEnabled()) {
    return (entry) => {
      process.stderr.write(`${JSON.stringify({ ns: 'pyworker', ...entry })}\n`);
    };
  }
  return NOOP;
}

/**
 * Turn one stderr line of a worker into a log entry. Lines are JSON objects
 * by contract; anything else (a Python traceback printed before logging was
 * set up) is kept as `{event: 'stderr', line}`.
 *
 * @param {string} line
 * @param {number|undefined} pid
 * @returns {LogEntry}
 */
function parseWorkerLine(line, pid) {
  try {
    const obj = JSON.parse(line);
    if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
      return { ...obj, source: 'worker', pid: obj.pid ?? pid, level: normalizeLevel(String(obj.level)), event: String(obj.event ?? 'log') };
    }
  } catch {
    /* not JSON */
  }
  return { source: 'worker', pid, level: 'info', event: 'stderr', line };
}

module.exports = { makeLogger, debugEnabled, parseWorkerLine, normalizeLevel };
