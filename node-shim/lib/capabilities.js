'use strict';

/**
 * What the workers of this install can do, from their `ready` frame (docs/protocol.md#capabilities), said
 * once at start-up: a missing part (an ID photo's weights, HEIC's library) must not first show as an error on
 * the request that needs it.
 *
 * @module pyworker-cutout/capabilities
 */

/**
 * One line naming every missing capability with its fix, or null when nothing is missing.
 * @param {Record<string, any>|null} info a `ready` frame
 * @returns {string|null}
 */
function missingSummary(info) {
  const missing = (info && info.missing) || {};
  const names = Object.keys(missing);
  if (!names.length) return null;
  return `this install lacks ${names.join(', ')}: ${names.map((n) => missing[n]).join(' | ')}`;
}

/**
 * Say it at start-up, once per process: a Node warning (printed on stderr unless the app runs with
 * --no-warnings or listens to process 'warning') and a `capabilities_missing` log entry (DEBUG=pyworker,
 * or the pool's logger).
 * @param {Record<string, any>} info the first `ready` frame
 * @param {(entry: import('./logger').LogEntry) => void} log
 */
function warnMissing(info, log) {
  const summary = missingSummary(info);
  if (!summary) return;
  log({ level: 'warn', event: 'capabilities_missing', source: 'client', missing: info.missing, message: summary });
  if (!warned.has(summary)) {
    warned.add(summary);
    process.emitWarning(`pyworker: ${summary}`, { type: 'PyworkerWarning', code: 'capability_unavailable' });
  }
}

/** Summaries already printed by this process (several pools of one install say it once). */
const warned = new Set();

module.exports = { missingSummary, warnMissing };
