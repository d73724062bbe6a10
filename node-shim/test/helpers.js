'use strict';

// Shared test helpers: synthetic images, fault files, process checks.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const { createPool } = require('..');

const REPO = path.resolve(__dirname, '..', '..');
const PYTHON = path.join(REPO, '.venv', 'bin', 'python');
// The pool finds the worker through PYWORKER_PYTHON (or `pyworker` on PATH); `make setup`
// installs the package, editable, into the repository's .venv.
if (!process.env.PYWORKER_PYTHON) process.env.PYWORKER_PYTHON = PYTHON;
// Every worker these tests start (pools, queue consumers, apps in child processes: all inherit this
// environment) packs its frames with msgpack's strict_types, as the Python tests' workers do
// (testkit.client): a NumPy scalar anywhere in a reply becomes an `internal` "could not be encoded"
// answer, which fails the test that met it. tests/faults/sitecustomize.py arms it; with no fault file
// it injects no fault.
process.env.PYWORKER_TEST_STRICT_TYPES = '1';
process.env.PYTHONPATH = [path.join(REPO, 'tests', 'faults'), process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);

/** CRC-32 (zlib.crc32 is not in every Node 20). */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/**
 * A synthetic RGB PNG: a red disc on a blue-green gradient, enough of a
 * "subject" for the model. Deterministic.
 */
function makePng(width = 160, height = 120) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  const cx = width / 2;
  const cy = height / 2;
  const r = Math.min(width, height) / 3;
  for (let y = 0; y < height; y++) {
    const row = y * (width * 3 + 1);
    raw[row] = 0; // filter: none
    for (let x = 0; x < width; x++) {
      const i = row + 1 + x * 3;
      const inside = (x - cx) ** 2 + (y - cy) ** 2 < r * r;
      raw[i] = inside ? 220 : 30;
      raw[i + 1] = inside ? 40 : Math.round((150 * x) / width);
      raw[i + 2] = inside ? 40 : Math.round(100 + (120 * y) / height);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** An RGB PNG of noise (xorshift, deterministic): its PNG is as large as its pixels (it does not compress). */
function makeNoisyPng(width, height, seed = 1) {
  const raw = Buffer.alloc((width * 3 + 1) * height);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < raw.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    raw[i] = i % (width * 3 + 1) === 0 ? 0 : x & 0xff;
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw, { level: 1 })), chunk('IEND', Buffer.alloc(0))]);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
function isPng(buf) {
  return Buffer.isBuffer(buf) && buf.subarray(0, 8).equals(PNG_SIGNATURE);
}
function pngSize(buf) {
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

/** A fresh temp dir with a fault-file path in it (the file is not created). */
function faultFile() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pyworker-fault-'));
  const file = path.join(dir, 'fault');
  return {
    file,
    /** The workers' environment: the fault file, and tests/faults (its sitecustomize) on PYTHONPATH. */
    env: { PYWORKER_TEST_FAULT_FILE: file, PYTHONPATH: path.join(REPO, 'tests', 'faults') },
    /** Arm a fault: the next remove job of one worker claims it. */
    arm(name) {
      fs.rmSync(`${file}.by`, { force: true });
      fs.writeFileSync(`${file}.tmp`, name);
      fs.renameSync(`${file}.tmp`, file);
    },
    armed() {
      return fs.existsSync(file);
    },
    /** The pid of the worker that claimed the fault armed last (it writes FILE.by), or null. */
    claimedBy() {
      try {
        return Number(fs.readFileSync(`${file}.by`, 'utf8'));
      } catch {
        return null;
      }
    },
    /** Waits until a worker has claimed the armed fault; resolves with its pid. */
    async claimed(timeoutMs = 60_000) {
      assert.ok(await waitFor(() => this.claimedBy() !== null, timeoutMs), 'the armed fault was claimed');
      return /** @type {number} */ (this.claimedBy());
    },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/**
 * The value (or the error) of a promise that must settle "at once": before the event loop's next turn, so
 * before any I/O (a worker's reply, a timer) could have been what settled it. No stopwatch, no load race.
 * @param {Promise<unknown>} promise
 */
async function settledBeforeNextTurn(promise) {
  const late = Symbol('late');
  const outcome = promise.then(
    (v) => v,
    (e) => e,
  );
  const first = await Promise.race([outcome, new Promise((r) => setImmediate(() => r(late)))]);
  assert.notEqual(first, late, 'not settled before the next turn of the event loop');
  return first;
}

async function waitFor(predicate, timeoutMs = 60_000, stepMs = 20) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await predicate()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return false;
}

/** Options every test pool shares: the repo's venv, fast start, small outputs. */
const BASE = {
  python: PYTHON,
  args: ['--no-warmup'],
  startTimeoutMs: 60_000,
  jobTimeoutMs: 60_000,
};

/** A test pool; `t.after` closes it (force) even when the test fails. */
function testPool(t, options = {}) {
  const pool = createPool({ ...BASE, ...options, env: { ...(options.env || {}) } });
  t.after(() => pool.close({ force: true }));
  return pool;
}

/** Small, fast remove options. */
const SMALL = { maxSize: 64 };

module.exports = { REPO, PYTHON, makePng, makeNoisyPng, isPng, pngSize, faultFile, pidAlive, waitFor, settledBeforeNextTurn, testPool, BASE, SMALL };

// ---------------------------------------------------------------------------
// Load-test helpers (test/load.test.js).

/** The open file descriptors of this process: {fd: link target}, from /proc/self/fd (Linux). */
function openFds() {
  /** @type {Record<string, string>} */
  const out = {};
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      out[fd] = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      /* the fd readdir itself used, already closed */
    }
  }
  return out;
}

/** Pids of this process's live (or zombie) children, from /proc (Linux). */
function childPids(parent = process.pid) {
  const pids = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) pids.push(Number(name));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

/** The p-th percentile (0-100) of numbers, nearest rank. */
function percentile(values, p) {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/**
 * Send `total` requests with at most `concurrency` in flight: `submit(i)`
 * returns the request's promise. Resolves once every promise settled, with one
 * record per request: {i, ok, value | error, ms (submit to settle), settled}.
 * `settled` counts the settlement callbacks, to prove each promise settled once.
 * `afterReject(record)` may return a promise to wait on before the lane goes on
 * (e.g. a back-off after QueueFullError).
 *
 * @param {(i: number) => Promise<any>} submit
 * @param {{total: number, concurrency: number, afterReject?: (rec: any) => any}} opts
 */
async function runLoad(submit, { total, concurrency, afterReject }) {
  const records = [];
  let next = 0;
  const lane = async () => {
    while (next < total) {
      const i = next++;
      const rec = { i, ok: null, value: undefined, error: undefined, ms: NaN, settled: 0 };
      records[i] = rec;
      const t0 = performance.now();
      await submit(i).then(
        (value) => {
          rec.settled += 1;
          rec.ok = true;
          rec.value = value;
        },
        (error) => {
          rec.settled += 1;
          rec.ok = false;
          rec.error = error;
        },
      );
      rec.ms = performance.now() - t0;
      if (!rec.ok && afterReject) await afterReject(rec);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return records;
}

module.exports.openFds = openFds;
module.exports.childPids = childPids;
module.exports.percentile = percentile;
module.exports.runLoad = runLoad;

// ---------------------------------------------------------------------------
// A stand-in for the u2netp weights, for tests that measure the pool and the
// protocol under load rather than the model. The real u2netp costs 0.5-2 s a
// job on a small CPU whatever the input size (it always runs at 320x320);
// this graph (ReduceMean over the colour channels: 1x3x320x320 ->
// 1x1x320x320, the same shapes as u2netp) costs ~1 ms, so hundreds of
// requests run in seconds. Everything else is the real worker: decode,
// resize, the mask pipeline, encode, framing, stats, malloc_trim.
// Hand-encoded ONNX protobuf, so no Python onnx package is needed.

/** protobuf varint */
function pbVarint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}
const pbKey = (field, wire) => pbVarint((field << 3) | wire);
const pbInt = (field, n) => Buffer.concat([pbKey(field, 0), pbVarint(n)]);
const pbBytes = (field, data) => {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8');
  return Buffer.concat([pbKey(field, 2), pbVarint(buf.length), buf]);
};

/** ValueInfoProto of a float tensor with a fixed shape. */
function onnxValueInfo(name, dims) {
  const shape = Buffer.concat(dims.map((d) => pbBytes(1, pbInt(1, d)))); // TensorShapeProto.dim {dim_value}
  const tensorType = Buffer.concat([pbInt(1, 1 /* FLOAT */), pbBytes(2, shape)]);
  return Buffer.concat([pbBytes(1, name), pbBytes(2, pbBytes(1, tensorType))]);
}

/** The stand-in model's bytes (see above). */
function standInMaskModel(size = 320) {
  const axes = Buffer.concat([pbBytes(1, 'axes'), pbInt(20, 7 /* INTS */), pbInt(8, 1)]);
  const keepdims = Buffer.concat([pbBytes(1, 'keepdims'), pbInt(20, 2 /* INT */), pbInt(3, 1)]);
  const node = Buffer.concat([pbBytes(1, 'input.1'), pbBytes(2, 'mask'), pbBytes(3, 'mean'), pbBytes(4, 'ReduceMean'), pbBytes(5, axes), pbBytes(5, keepdims)]);
  const graph = Buffer.concat([
    pbBytes(1, node),
    pbBytes(2, 'stand-in-u2netp'),
    pbBytes(11, onnxValueInfo('input.1', [1, 3, size, size])),
    pbBytes(12, onnxValueInfo('mask', [1, 1, size, size])),
  ]);
  const opset = Buffer.concat([pbBytes(1, ''), pbInt(2, 13)]);
  return Buffer.concat([pbInt(1, 7 /* IR version */), pbBytes(2, 'pyworker-tests'), pbBytes(7, graph), pbBytes(8, opset)]);
}

/**
 * A temp model home (the worker's U2NET_HOME) holding the stand-in as
 * u2netp.onnx. Returns {env, cleanup}: pass `env` to the pool.
 */
function standInModelHome() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pyworker-standin-'));
  fs.writeFileSync(path.join(dir, 'u2netp.onnx'), standInMaskModel());
  return {
    dir,
    env: { U2NET_HOME: dir },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

module.exports.standInMaskModel = standInMaskModel;
module.exports.standInModelHome = standInModelHome;
