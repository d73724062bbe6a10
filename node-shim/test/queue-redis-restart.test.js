'use strict';

// Issue 22, attack 8: a Redis restart while jobs are awaited. Before, the lost jobs hung until deadlineMs (then jobTimeoutMs)
// (120 s by default) and failed job_timeout, a message that blames time, not Redis. A real redis-server,
// restarted on the same port without persistence (the jobs' records are gone).

const { it } = require('node:test');
const assert = require('node:assert/strict');
const { createQueueClient } = require('..');
const { makePng } = require('./helpers');
const { startRedis } = require('./redis-helper');

it('jobs lost in a Redis restart fail job_lost, saying so, well before their timeout', async (t) => {
  let redis = await startRedis();
  t.after(() => redis.stop());
  // No consumer: the jobs wait in the queue when Redis goes.
  const q = createQueueClient({ redis: redis.url, queue: 'restart', deadlineMs: 60_000 });
  q.on('error', () => {}); // the reconnects while Redis is down
  t.after(() => q.close());
  const jobs = [q.remove(makePng(60, 40)).catch((e) => e), q.remove(makePng(70, 40)).catch((e) => e)];
  await q.ready();
  while ((await q.stats()).waiting < 2) await new Promise((r) => setTimeout(r, 50)); // both added
  const port = redis.port;
  await redis.stop();
  redis = await startRedis({ port });
  for (const err of await Promise.all(jobs)) {
    assert.equal(err.code, 'job_lost', String(err));
    assert.match(err.message, /is no longer in Redis \(queue "restart"\): Redis restarted without persistence or evicted it; nothing was done for it, send it again/);
  }
  // The client goes on: a new job is taken by the restarted Redis.
  const later = q.remove(makePng(60, 40)).catch((e) => e);
  while ((await q.stats()).waiting < 1) await new Promise((r) => setTimeout(r, 50));
  assert.equal((await q.stats()).queuedJobs, 1);
  void later;
});
