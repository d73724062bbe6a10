'use strict';

// Zips written byte by byte, so a test can make them lie: entry counts, sizes,
// offsets that overlap. Crafted in the test, never committed.

const zlib = require('node:zlib');

/**
 * @typedef {object} CraftEntry
 * @property {string} name
 * @property {Buffer} [data] the entry's bytes (deflated unless method 0)
 * @property {number} [method] 8 (default) or 0
 * @property {number} [size] declared uncompressed size (default: the real one)
 * @property {number} [sharesWith] write no data: point this entry at entry n's local header
 * @property {Buffer} [raw] already-compressed bytes to write as they are (with `size` declared)
 */

/**
 * @param {CraftEntry[]} entries
 * @param {{declaredCount?: number}} [opts]
 */
function craftZip(entries, opts = {}) {
  const locals = [];
  const central = [];
  const offsets = [];
  const meta = [];
  let at = 0;
  for (const [i, e] of entries.entries()) {
    const name = Buffer.from(e.name, 'utf8');
    const method = e.method ?? 8;
    let size;
    let body;
    if (e.sharesWith !== undefined) {
      offsets.push(offsets[e.sharesWith]);
      const m = meta[e.sharesWith];
      meta.push({ ...m, size: e.size ?? m.size, name });
    } else {
      body = e.raw ?? (method === 8 ? zlib.deflateRawSync(e.data) : e.data);
      size = e.size ?? (e.raw ? 0 : e.data.length);
      const lh = Buffer.alloc(30);
      lh.writeUInt32LE(0x04034b50, 0);
      lh.writeUInt16LE(20, 4);
      lh.writeUInt16LE(0x800, 6);
      lh.writeUInt16LE(method, 8);
      lh.writeUInt32LE(body.length, 18);
      lh.writeUInt32LE(size, 22);
      lh.writeUInt16LE(name.length, 26);
      locals.push(lh, name, body);
      offsets.push(at);
      meta.push({ method, compressed: body.length, size, name });
      at += 30 + name.length + body.length;
    }
    const m = meta[i];
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt16LE(20, 4);
    ch.writeUInt16LE(20, 6);
    ch.writeUInt16LE(0x800, 8);
    ch.writeUInt16LE(m.method, 10);
    ch.writeUInt32LE(m.compressed, 20);
    ch.writeUInt32LE(m.size, 24);
    ch.writeUInt16LE(m.name.length, 28);
    ch.writeUInt32LE(offsets[i], 42);
    central.push(ch, m.name);
  }
  const cd = Buffer.concat(central);
  const count = opts.declaredCount ?? entries.length;
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(Math.min(count, 0xffff), 8);
  eocd.writeUInt16LE(Math.min(count, 0xffff), 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(at, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

/**
 * The issue's first attack: a ZIP64 file of ~128 bytes declaring `count` entries (2^28 by default) and a central
 * directory of that many entries' worth of bytes that are not there.
 */
function zip64Declaring(count = 2 ** 28) {
  const z64 = Buffer.alloc(56);
  z64.writeUInt32LE(0x06064b50, 0);
  z64.writeBigUInt64LE(44n, 4);
  z64.writeUInt16LE(45, 12);
  z64.writeUInt16LE(45, 14);
  z64.writeBigUInt64LE(BigInt(count), 24);
  z64.writeBigUInt64LE(BigInt(count), 32);
  z64.writeBigUInt64LE(BigInt(count) * 46n, 40); // directory size: what `count` records would take
  z64.writeBigUInt64LE(0n, 48);
  const loc = Buffer.alloc(20);
  loc.writeUInt32LE(0x07064b50, 0);
  loc.writeBigUInt64LE(30n, 8);
  loc.writeUInt32LE(1, 16);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(0xffff, 8);
  eocd.writeUInt16LE(0xffff, 10);
  eocd.writeUInt32LE(0xffffffff, 12);
  eocd.writeUInt32LE(0xffffffff, 16);
  const lh = Buffer.alloc(30);
  lh.writeUInt32LE(0x04034b50, 0);
  return Buffer.concat([lh, z64, loc, eocd]);
}

/** Raw deflate of `n` zero bytes, made in 1 MiB steps (the test never holds `n` bytes). */
async function deflatedZeros(n) {
  const d = zlib.createDeflateRaw({ level: 9 });
  const parts = [];
  d.on('data', (c) => parts.push(c));
  const done = new Promise((r) => d.on('end', r));
  const block = Buffer.alloc(Math.min(n, 1024 * 1024));
  for (let left = n; left > 0; left -= block.length) {
    if (!d.write(left >= block.length ? block : block.subarray(0, left))) await new Promise((r) => d.once('drain', r));
  }
  d.end();
  await done;
  return Buffer.concat(parts);
}

module.exports = { craftZip, zip64Declaring, deflatedZeros };
