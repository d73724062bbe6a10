'use strict';

/**
 * One 'abort' listener per AbortSignal, however many jobs share it.
 *
 * A page that cancels 50 uploads with one AbortController would otherwise add
 * 50 listeners to one EventTarget, and Node prints MaxListenersExceededWarning
 * past 10. The signal is the caller's: we never change its listener limit.
 */

/** @type {WeakMap<AbortSignal, {fns: Set<(reason: unknown) => void>, handler: () => void}>} */
const watched = new WeakMap();

/**
 * Call `fn(reason)` once when `signal` aborts. Returns the function that stops watching.
 * @param {AbortSignal} signal
 * @param {(reason: unknown) => void} fn
 * @returns {() => void}
 */
function onAbort(signal, fn) {
  let entry = watched.get(signal);
  if (!entry) {
    const fns = new Set();
    const handler = () => {
      watched.delete(signal);
      for (const f of [...fns]) f(signal.reason);
    };
    entry = { fns, handler };
    watched.set(signal, entry);
    signal.addEventListener('abort', handler, { once: true });
  }
  const e = entry;
  e.fns.add(fn);
  return () => {
    e.fns.delete(fn);
    if (e.fns.size === 0 && watched.get(signal) === e) {
      watched.delete(signal);
      signal.removeEventListener('abort', e.handler);
    }
  };
}

module.exports = { onAbort };
