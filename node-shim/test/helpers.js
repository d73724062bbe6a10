'use strict';

// Shared test helpers: synthetic images, fault files, process checks.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const zlib = require('node:zlib');
const { createPool } = require('..');

const REPO = path.resolve(__dirname, '..', '..');
const PYTHON = path.join(REPO, '.venv', 'bin', 'python');

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
    /** Arm a fault: the next remove job of one worker claims it. */
    arm(name) {
      fs.writeFileSync(`${file}.tmp`, name);
      fs.renameSync(`${file}.tmp`, file);
    },
    armed() {
      return fs.existsSync(file);
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

async function waitFor(predicate, timeoutMs = 10_000, stepMs = 20) {
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

module.exports = { REPO, PYTHON, makePng, isPng, pngSize, faultFile, pidAlive, waitFor, testPool, BASE, SMALL };
