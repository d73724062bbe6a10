#!/usr/bin/env node
'use strict';

// pyworker-queue-worker: one per machine. Takes jobs from a BullMQ queue on
// Redis and runs them on this machine's supervised pool. SIGTERM/SIGINT
// drain (running jobs finish and are stored) and exit 0; a second signal stops
// at once (exit 1; the jobs in hand run again on another consumer).
//
// Pool settings come from the PYWORKER_* environment variables (README),
// --pool-size overriding PYWORKER_POOL_SIZE.

const { parseArgs } = require('node:util');
const { poolOptionsFromEnv } = require('../lib/settings');
const { DEFAULTS, describeRedis } = require('../lib/queue/settings');

const USAGE = `usage: pyworker-queue-worker --redis redis://HOST:PORT --queue NAME [--pool-size N] [--concurrency N]
       [--lock-duration-ms N] [--stalled-interval-ms N] [--max-stalled-count N]

  --redis               Redis URL (redis://[user:password@]host:port[/db], rediss:// for TLS)
  --queue               queue name (the producers' createQueueClient({queue}))
  --pool-size           Python workers on this machine (default: from memory and cores, or PYWORKER_POOL_SIZE)
  --concurrency         jobs taken at once (default: the pool size)
  --lock-duration-ms    job lock, renewed every half of it (default ${DEFAULTS.lockDurationMs})
  --stalled-interval-ms how often dead consumers' jobs are looked for (default ${DEFAULTS.stalledIntervalMs})
  --max-stalled-count   times a job may lose its consumer and run again (default ${DEFAULTS.maxStalledCount})`;

/** @param {string} msg */
function die(msg) {
  process.stderr.write(`pyworker-queue-worker: ${msg}\n${USAGE}\n`);
  process.exit(64);
}

/** @param {string|undefined} v @param {string} name @param {number} min */
function int(v, name, min) {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) die(`--${name} must be an integer >= ${min}, got "${v}"`);
  return Number(v);
}

/** @param {Record<string, unknown>} entry */
function log(entry) {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
}

async function main() {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        redis: { type: 'string' },
        queue: { type: 'string' },
        'pool-size': { type: 'string' },
        concurrency: { type: 'string' },
        'lock-duration-ms': { type: 'string' },
        'stalled-interval-ms': { type: 'string' },
        'max-stalled-count': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
  } catch (err) {
    return die(/** @type {Error} */ (err).message);
  }
  const a = parsed.values;
  if (a.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!a.redis) die('--redis is required');
  if (!a.queue) die('--queue is required');
  const poolOptions = poolOptionsFromEnv();
  const size = int(a['pool-size'], 'pool-size', 1);
  if (size !== undefined) poolOptions.size = size;
  const concurrency = int(a.concurrency, 'concurrency', 1);
  // The pool must be able to hold every job taken at once.
  poolOptions.maxQueue = Math.max(Number(poolOptions.maxQueue ?? 0), concurrency ?? 0, 64);

  // Required here, not at the top: without bullmq (an optional peer) the catch below prints what to install.
  const { createQueueConsumer } = require('../lib/queue/consumer');
  const consumer = createQueueConsumer({
    redis: /** @type {string} */ (a.redis),
    queue: /** @type {string} */ (a.queue),
    pool: poolOptions,
    concurrency,
    lockDurationMs: int(a['lock-duration-ms'], 'lock-duration-ms', 1000),
    stalledIntervalMs: int(a['stalled-interval-ms'], 'stalled-interval-ms', 500),
    maxStalledCount: int(a['max-stalled-count'], 'max-stalled-count', 0),
  });
  consumer.on('error', (err) => log({ level: 'error', event: 'queue_error', message: err.message }));
  consumer.on('stalled', (jobId) => log({ level: 'warn', event: 'job_stalled', jobId }));
  consumer.pool.on('error', (err) => log({ level: 'error', event: 'pool_error', message: err.message }));

  let stopping = false;
  /** @param {string} signal */
  const stop = async (signal) => {
    if (stopping) {
      // A second signal: do not wait for the jobs in hand (they run again elsewhere, as after a crash).
      log({ level: 'warn', event: 'forced_stop', signal });
      consumer.pool.close({ force: true }).finally(() => process.exit(1));
      return;
    }
    stopping = true;
    log({ level: 'info', event: 'draining', signal });
    try {
      await consumer.close();
      log({ level: 'info', event: 'stopped', ...consumer.counters });
      process.exit(0);
    } catch (err) {
      log({ level: 'error', event: 'stop_failed', message: /** @type {Error} */ (err).message });
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  await consumer.start();
  const s = consumer.pool.stats();
  log({
    level: 'info',
    event: 'ready',
    consumer: consumer.name,
    redis: describeRedis(/** @type {string} */ (a.redis)),
    queue: a.queue,
    concurrency: consumer.concurrency,
    workers: s.workers.map((w) => w.pid),
  });
}

main().catch((err) => {
  const missingPeer = err && err.code === 'MODULE_NOT_FOUND' && err.cause; // lib/optional.js: the message says it all
  process.stderr.write(`pyworker-queue-worker: ${missingPeer ? err.message : err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
