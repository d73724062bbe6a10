'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const os = require('node:os');
const path = require('node:path');
const { parseRequestOptions, camelize } = require('../lib/request-options');
const { normalizePoolOptions, poolOptionsFromEnv, workerArgs } = require('../lib/settings');
const { WorkerError } = require('../lib/errors');
const { debugEnabled, parseWorkerLine } = require('../lib/logger');
const { sniffMime } = require('../lib/mime');

test('request options: camelCase to snake_case on the wire, client keys kept apart', () => {
  const ac = new AbortController();
  const r = parseRequestOptions({
    maxSize: 320,
    bgColor: '#ffffff',
    format: 'webp',
    onlyMask: false,
    refine: true,
    trim: true,
    padding: 4,
    crop: 'face',
    preset: 'passport-35x45',
    faceRequired: true,
    model: 'u2netp',
    signal: ac.signal,
    timeoutMs: 5000,
    fallback: 'original',
    undefinedIsDropped: undefined,
  });
  assert.deepEqual(r.wire, {
    max_size: 320,
    bg_color: '#ffffff',
    format: 'webp',
    only_mask: false,
    refine: true,
    trim: true,
    padding: 4,
    crop: 'face',
    preset: 'passport-35x45',
    face_required: true,
    model: 'u2netp',
  });
  assert.equal(r.signal, ac.signal);
  assert.equal(r.timeoutMs, 5000);
  assert.equal(r.fallback, 'original');
  assert.deepEqual(parseRequestOptions(undefined).wire, {});
  assert.deepEqual(parseRequestOptions({ bgColor: [0, 128, 255], crop: null, preset: null }).wire, {
    bg_color: [0, 128, 255],
    crop: null,
    preset: null,
  });
});

test('request options: bad values fail before sending, as bad_request with a clear message', () => {
  const cases = [
    [{ maxSize: -1 }, /options\.maxSize must be an integer >= 0.*got -1/],
    [{ maxSize: 1.5 }, /maxSize/],
    [{ maxSize: '800' }, /maxSize.*got "800"/],
    [{ bgColor: 'white' }, /bgColor must be null, "#rrggbb"/],
    [{ bgColor: '#fffff' }, /bgColor/],
    [{ format: 'JPG' }, /format/],
    [{ padding: 4097 }, /padding must be an integer from 0 to 4096/],
    [{ bgColor: [0, 0, 256] }, /bgColor/],
    [{ bgColor: [0, 0] }, /bgColor/],
    [{ format: 'gif' }, /format must be "png", "webp" or "jpeg"/],
    [{ onlyMask: 'yes' }, /onlyMask must be true or false/],
    [{ padding: -3 }, /padding/],
    [{ crop: 'body' }, /crop must be "face" or null/],
    [{ preset: '' }, /preset/],
    [{ model: 42 }, /model must be a string or null/],
    [{ maxSize: 10, max_size: 20 }, /same option/],
    [{ someNewOption: { nested: true } }, /someNewOption must be null, a boolean/],
  ];
  for (const [opts, re] of cases) {
    assert.throws(
      () => parseRequestOptions(opts),
      (err) => err instanceof WorkerError && err.code === 'bad_request' && re.test(err.message),
      JSON.stringify(opts),
    );
  }
  assert.throws(() => parseRequestOptions('png'), TypeError);
  assert.throws(() => parseRequestOptions({ signal: {} }), TypeError);
  assert.throws(() => parseRequestOptions({ timeoutMs: 0 }), TypeError);
  assert.throws(() => parseRequestOptions({ fallback: 'maybe' }), TypeError);
});

test('request options the client does not know are forwarded in snake_case', () => {
  assert.deepEqual(parseRequestOptions({ edgeSoftness: 3, snake_key: 'x' }).wire, { edge_softness: 3, snake_key: 'x' });
});

test('pool options: size from the memory budget, capped by cores; threads split the cores', () => {
  const cores = os.availableParallelism();
  const o = normalizePoolOptions({ python: 'python3' });
  const budget = Math.min(1024, Math.floor(os.totalmem() / 2 ** 20 / 4));
  assert.equal(o.memoryBudgetMb, budget);
  assert.equal(o.size, Math.max(1, Math.min(cores, Math.floor(budget / 300))));
  assert.equal(o.threads, Math.max(1, Math.floor(cores / o.size)));
  assert.equal(normalizePoolOptions({ python: 'python3', memoryBudgetMb: 100 }).size, 1);
  assert.equal(normalizePoolOptions({ python: 'python3', size: 3 }).threads, Math.max(1, Math.floor(cores / 3)));
  assert.equal(o.retries, 1);
  assert.equal(o.fallback, 'throw');
  assert.equal(o.minWorkers, o.size);
  assert.equal(normalizePoolOptions({ python: 'python3', lazy: true }).minWorkers, 0);
  assert.throws(() => normalizePoolOptions({ size: 0 }), /size must be an integer >= 1/);
  assert.throws(() => normalizePoolOptions({ sizee: 2 }), /unknown pool option "sizee"/);
  assert.throws(() => normalizePoolOptions({ fallback: 'x' }), /fallback/);
  assert.throws(() => normalizePoolOptions({ memoryLimitMb: 0 }), /memoryLimitMb/);
});

test('pool options: the default interpreter is PYWORKER_PYTHON (checked), never a guess', () => {
  const o = normalizePoolOptions({});
  assert.equal(o.python, path.resolve(process.env.PYWORKER_PYTHON));
  assert.equal(o.cwd, undefined, 'the workers run in the app\'s own directory');
});

test('worker command line carries the worker flags', () => {
  const o = normalizePoolOptions({ python: 'p', size: 1, threads: 2, memoryLimitMb: 500, maxSide: 2048, model: 'u2netp', args: ['--no-warmup'] });
  assert.deepEqual(workerArgs(o), ['-m', 'pyworker', '--model', 'u2netp', '--threads', '2', '--max-rss-mb', '500', '--max-side', '2048', '--no-warmup']);
});

test('pool options from the environment', () => {
  const o = poolOptionsFromEnv({
    PYWORKER_POOL_SIZE: '3',
    PYWORKER_MEMORY_LIMIT_MB: '600',
    PYWORKER_JOB_TIMEOUT_MS: '15000',
    PYWORKER_MAX_QUEUE: 'unlimited',
    PYWORKER_THREADS: '2',
    PYWORKER_LAZY: 'true',
    PYWORKER_ARGS: '--no-warmup --max-models 2',
    PYWORKER_RETRIES: '',
  });
  assert.deepEqual(o, {
    size: 3,
    memoryLimitMb: 600,
    jobTimeoutMs: 15000,
    maxQueue: Infinity,
    threads: 2,
    lazy: true,
    args: ['--no-warmup', '--max-models', '2'],
  });
  assert.throws(() => poolOptionsFromEnv({ PYWORKER_POOL_SIZE: 'two' }), /PYWORKER_POOL_SIZE="two" must be a non-negative integer/);
  normalizePoolOptions(o); // env options are valid pool options
});

test('camelize turns reply keys to camelCase, deeply', () => {
  assert.deepEqual(camelize({ rss_mb: 1, timings_ms: { total: 2 }, crop_box: [1, 2, 3, 4] }), {
    rssMb: 1,
    timingsMs: { total: 2 },
    cropBox: [1, 2, 3, 4],
  });
});

test('DEBUG=pyworker turns logging on; worker lines are parsed as JSON', () => {
  assert.equal(debugEnabled('pyworker'), true);
  assert.equal(debugEnabled('express,pyworker*'), true);
  assert.equal(debugEnabled('*,-pyworker'), false);
  assert.equal(debugEnabled('express'), false);
  assert.equal(debugEnabled(''), false);
  const e = parseWorkerLine('{"ts":"x","level":"warning","event":"retiring","pid":5,"rss_mb":9}', 5);
  assert.equal(e.level, 'warn');
  assert.equal(e.event, 'retiring');
  assert.equal(e.rss_mb, 9);
  assert.deepEqual(parseWorkerLine('Traceback (most recent call last):', 6), {
    source: 'worker',
    pid: 6,
    level: 'info',
    event: 'stderr',
    line: 'Traceback (most recent call last):',
  });
});

test('sniffMime', () => {
  assert.equal(sniffMime(Buffer.from([0xff, 0xd8, 0xff, 0xe0])), 'image/jpeg');
  assert.equal(sniffMime(Buffer.from('\x89PNG\r\n\x1a\n', 'latin1')), 'image/png');
  assert.equal(sniffMime(Buffer.from('RIFF....WEBPVP8 ', 'latin1')), 'image/webp');
  assert.equal(sniffMime(Buffer.from('GIF89a')), 'image/gif');
  assert.equal(sniffMime(Buffer.from('hello')), null);
});
