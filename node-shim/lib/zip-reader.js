'use strict';

/**
 * The photos of an uploaded zip, read so that no figure written in the zip
 * decides what reading it costs (docs/reliability.md#round-2):
 *
 * - the central directory is walked by its bytes, not by the entry count it
 *   declares, and the walk stops at `maxEntries` records: a 128-byte ZIP64 file
 *   declaring 2^28 entries costs 1 record, not 2^28 loop turns;
 * - every photo's byte range (local header + data) must lie before the central
 *   directory and touch no other's: overlapping entries (one stream of zeros
 *   inflated again by every entry pointing at it) are refused before any inflate;
 * - sizes are checked against the limits from the directory first (cheap), then
 *   enforced while inflating: zlib stops at the declared size (`maxOutputLength`),
 *   whatever the stream holds, so an entry can never inflate past what was
 *   budgeted for it;
 * - inflating runs on libuv's thread pool (async zlib), one entry at a time, and a
 *   stored entry is copied in a turn of the event loop of its own; what runs in one
 *   turn is bounded by `maxEntries` and one entry's size, never by a number the zip
 *   chose;
 * - names are cut to `MAX_NAME` characters, control characters dropped, and made
 *   unique (`a.jpg`, `a-2.jpg`); each renaming is reported.
 *
 * A photo that breaks a per-photo limit (too large, encrypted, an unknown
 * compression) is returned with its error, so the batch reports it and goes on;
 * a zip whose structure lies (overlaps, ranges outside the file, too many
 * records or photos) is refused whole.
 *
 * @module pyworker/zip-reader
 */

const zlib = require('node:zlib');
const path = require('node:path');
const { promisify } = require('node:util');
const { setImmediate: nextTurn } = require('node:timers/promises');
const { WorkerError } = require('./errors');

const inflateRaw = promisify(zlib.inflateRaw);
const MiB = 1024 * 1024;

/** A photo's name is cut to this many characters (after its folders are dropped). */
const MAX_NAME = 120;
const IMAGE_NAME = /\.(jpe?g|png|webp|bmp|heic|heif|avif)$/i;

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const CENTRAL_FIXED = 46;
const LOCAL_FIXED = 30;
const EOCD_FIXED = 22;

/**
 * @typedef {{name: string, data: Buffer}} ZipPhoto
 * @typedef {{name: string, error: {code: string, message: string}}} ZipFailure
 * @typedef {object} ZipLimits
 * @property {number} maxFiles photos at most (more: the zip is refused)
 * @property {number} maxBytes the photos' declared inflated bytes together, at most
 * @property {number} maxEntryBytes one photo's inflated bytes, at most (more: that photo fails input_too_large)
 * @property {number} [maxEntries] central-directory records walked at most (photos, folders, other files); default 4 x maxFiles + 64
 * @property {(bytes: number) => void} [reserve] called before an entry is inflated with its declared size; throws to refuse
 * @property {boolean} [views] a stored entry's data is a view of the upload's buffer, not a copy, and is not
 *   reserved (its bytes are the upload's): for a caller that lets go of every photo's data with the buffer
 * @property {Set<string>} [taken] names already used in the batch (the zip's are made unique against them)
 */

/** @param {string} message @param {string} [code] */
const refuse = (message, code = 'bad_request') => new WorkerError(message, { code });

/**
 * The end-of-central-directory record: where the directory is and how big. Searched for in the last
 * 64 KiB + 22 bytes only (the comment's maximum), so the search is bounded whatever the file.
 * @param {Buffer} buf
 */
function findDirectory(buf) {
  const stop = Math.max(0, buf.length - EOCD_FIXED - 0xffff);
  let at = -1;
  for (let i = buf.length - EOCD_FIXED; i >= stop; i--) {
    if (buf.readUInt32LE(i) === SIG_EOCD) {
      at = i;
      break;
    }
  }
  if (at < 0) throw refuse('not a readable zip: no end-of-central-directory record', 'invalid_image');
  let size = buf.readUInt32LE(at + 12);
  let offset = buf.readUInt32LE(at + 16);
  let end = at;
  if (size === 0xffffffff || offset === 0xffffffff || buf.readUInt16LE(at + 10) === 0xffff) {
    // ZIP64: the locator sits just before the record and points at the ZIP64 end record.
    const loc = at - 20;
    if (loc >= 0 && buf.readUInt32LE(loc) === SIG_ZIP64_LOCATOR) {
      const z = Number(buf.readBigUInt64LE(loc + 8));
      if (z + 56 > loc || buf.readUInt32LE(z) !== SIG_ZIP64_EOCD) throw refuse('not a readable zip: its ZIP64 end record is outside the file', 'invalid_image');
      size = Number(buf.readBigUInt64LE(z + 40));
      offset = Number(buf.readBigUInt64LE(z + 48));
      end = z;
    }
  }
  // The directory must be bytes actually present, before its end record.
  if (offset + size > end) throw refuse(`not a readable zip: its central directory (${size} bytes at ${offset}) is outside the file (${buf.length} bytes)`, 'invalid_image');
  return { offset, size };
}

/**
 * One central-directory record's fields (ZIP64 extra field applied).
 * @param {Buffer} buf @param {number} p @param {number} limit
 */
function readRecord(buf, p, limit) {
  if (p + CENTRAL_FIXED > limit || buf.readUInt32LE(p) !== SIG_CENTRAL) throw refuse(`not a readable zip: bad central-directory record at byte ${p}`, 'invalid_image');
  const nameLen = buf.readUInt16LE(p + 28);
  const extraLen = buf.readUInt16LE(p + 30);
  const commentLen = buf.readUInt16LE(p + 32);
  const next = p + CENTRAL_FIXED + nameLen + extraLen + commentLen;
  if (next > limit) throw refuse(`not a readable zip: central-directory record at byte ${p} runs past the directory`, 'invalid_image');
  const flags = buf.readUInt16LE(p + 8);
  const rawName = buf.subarray(p + CENTRAL_FIXED, p + CENTRAL_FIXED + nameLen);
  const rec = {
    next,
    flags,
    method: buf.readUInt16LE(p + 10),
    compressed: buf.readUInt32LE(p + 20),
    size: buf.readUInt32LE(p + 24),
    offset: buf.readUInt32LE(p + 42),
    // Bit 11: UTF-8; otherwise CP437, read as latin1 (names only label the photo).
    name: rawName.toString(flags & 0x800 ? 'utf8' : 'latin1'),
  };
  // ZIP64 extra field (id 1): 8-byte values for the fields that read 0xFFFFFFFF, in this order.
  let e = p + CENTRAL_FIXED + nameLen;
  const extraEnd = e + extraLen;
  while (e + 4 <= extraEnd) {
    const id = buf.readUInt16LE(e);
    const len = buf.readUInt16LE(e + 2);
    if (id === 1) {
      let q = e + 4;
      const q64 = () => {
        if (q + 8 > e + 4 + len) throw refuse(`not a readable zip: short ZIP64 field in "${cut(rec.name)}"`, 'invalid_image');
        const v = Number(buf.readBigUInt64LE(q));
        q += 8;
        return v;
      };
      if (rec.size === 0xffffffff) rec.size = q64();
      if (rec.compressed === 0xffffffff) rec.compressed = q64();
      if (rec.offset === 0xffffffff) rec.offset = q64();
    }
    e += 4 + len;
  }
  return rec;
}

/** A name as echoed in a message. @param {string} s */
const cut = (s) => (s.length > 60 ? `${s.slice(0, 60)}...` : s);

/**
 * path.posix.basename (with `backslash`: either separator) by native scans: path.basename walks a name one character
 * at a time, and a zip may hold 500 names of 65,535 characters (0.4 ms each; with the old one-character regex of
 * cleanName, 4 ms: 2 s of a blocked event loop).
 * @param {string} name @param {boolean} [backslash]
 */
function lastPart(name, backslash = false) {
  let end = name.length;
  while (end > 0 && (name[end - 1] === '/' || (backslash && name[end - 1] === '\\'))) end--;
  let from = name.lastIndexOf('/', end - 1);
  if (backslash) from = Math.max(from, name.lastIndexOf('\\', end - 1));
  return name.slice(from + 1, end);
}

/**
 * A photo's name: its base name, no control characters, at most MAX_NAME characters (extension kept).
 * @param {string} raw
 */
function cleanName(raw) {
  // eslint-disable-next-line no-control-regex
  let base = lastPart(raw, true).replace(/[\u0000-\u001f\u007f-\u009f]+/g, '');
  if (base.length > MAX_NAME) {
    const ext = path.extname(base).slice(0, 10);
    base = base.slice(0, MAX_NAME - ext.length) + ext;
  }
  return base || 'photo';
}

/**
 * `name`, or `stem-2.ext`, `stem-3.ext`... the first not in `taken`; added to it.
 * @param {string} name @param {Set<string>} taken
 */
function uniqueName(name, taken) {
  if (!taken.has(name)) {
    taken.add(name);
    return name;
  }
  const ext = path.extname(name);
  const stem = name.slice(0, name.length - ext.length);
  for (let n = 2; ; n++) {
    const candidate = `${stem}-${n}${ext}`;
    if (!taken.has(candidate)) {
      taken.add(candidate);
      return candidate;
    }
  }
}

/** True for the bytes of a zip file. @param {Buffer} buf */
function isZip(buf) {
  return buf.length >= 4 && buf.readUInt32LE(0) === SIG_LOCAL;
}

/** Folders, macOS resource forks, dot files and files that are not photos by name. @param {string} name */
function isPhotoName(name) {
  const base = lastPart(name);
  return !name.endsWith('/') && !name.startsWith('__MACOSX/') && !base.startsWith('.') && IMAGE_NAME.test(base);
}

/**
 * Read the photos of a zip upload within `limits`.
 * @param {Buffer} buf
 * @param {ZipLimits} limits
 * @returns {Promise<{photos: (ZipPhoto|ZipFailure)[], renamed: {from: string, to: string}[], skipped: number}>}
 */
async function readZip(buf, limits) {
  const { maxFiles, maxBytes, maxEntryBytes } = limits;
  const maxEntries = limits.maxEntries ?? 4 * maxFiles + 64;
  const dir = findDirectory(buf);
  const dirEnd = dir.offset + dir.size;

  // 1. Walk the directory's bytes, at most maxEntries records: the declared count is not read.
  /** @type {ReturnType<typeof readRecord>[]} */
  const photos = [];
  let records = 0;
  let skipped = 0;
  for (let p = dir.offset; p < dirEnd; ) {
    if (++records > maxEntries) throw refuse(`the zip has more than ${maxEntries} entries (files and folders); a batch holds at most ${maxFiles} photos (maxFiles)`, 'input_too_large');
    const rec = readRecord(buf, p, dirEnd);
    p = rec.next;
    if (!isPhotoName(rec.name)) skipped += 1;
    else if (photos.push(rec) > maxFiles) throw refuse(`the zip holds more than ${maxFiles} photos (maxFiles)`, 'input_too_large');
  }
  if (photos.length === 0) throw refuse('the zip holds no photo (.jpg, .jpeg, .png, .webp, .bmp, .heic, .avif)');

  // 2. Byte ranges: each photo's local header and data lie before the directory, and no two overlap.
  const ranges = photos.map((rec) => {
    const o = rec.offset;
    if (o + LOCAL_FIXED > dir.offset || buf.readUInt32LE(o) !== SIG_LOCAL) throw refuse(`not a readable zip: "${cut(rec.name)}" has no local header at byte ${o}`, 'invalid_image');
    const start = o + LOCAL_FIXED + buf.readUInt16LE(o + 26) + buf.readUInt16LE(o + 28);
    const end = start + rec.compressed;
    if (end > dir.offset) throw refuse(`not a readable zip: "${cut(rec.name)}" (${rec.compressed} bytes at ${start}) runs past its data`, 'invalid_image');
    return { rec, o, start, end };
  });
  const sorted = [...ranges].sort((a, b) => a.o - b.o);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].o < sorted[i - 1].end) {
      throw refuse(`the zip's entries "${cut(sorted[i - 1].rec.name)}" and "${cut(sorted[i].rec.name)}" share bytes (overlapping entries: a zip bomb); refused`);
    }
  }

  // 3. The declared sizes against the batch's bytes, before anything is inflated.
  let declared = 0;
  for (const { rec } of ranges) if (rec.size <= maxEntryBytes) declared += rec.size;
  if (declared > maxBytes) throw refuse(`the zip's photos are ${(declared / MiB).toFixed(1)}MB uncompressed, more than ${(maxBytes / MiB).toFixed(0)}MB (maxBytes)`, 'input_too_large');

  // 4. Inflate one at a time, each stopped at its declared size.
  const taken = limits.taken ?? new Set();
  /** @type {(ZipPhoto|ZipFailure)[]} */
  const out = [];
  /** @type {{from: string, to: string}[]} */
  const renamed = [];
  for (const { rec, start, end } of ranges) {
    const clean = cleanName(rec.name);
    const name = uniqueName(clean, taken);
    if (name !== lastPart(rec.name)) renamed.push({ from: cut(rec.name), to: name });
    const fail = (/** @type {string} */ code, /** @type {string} */ message) => out.push({ name, error: { code, message } });
    if (rec.flags & 1) {
      fail('bad_request', `"${name}" is encrypted in the zip`);
      continue;
    }
    if (rec.size > maxEntryBytes) {
      fail('input_too_large', `File size (${(rec.size / MiB).toFixed(1)}MB) exceeds maximum (${(maxEntryBytes / MiB).toFixed(1)}MB)`);
      continue;
    }
    if (rec.method !== 0 && rec.method !== 8) {
      fail('bad_request', `"${name}" uses zip compression method ${rec.method}; only stored (0) and deflate (8) are read`);
      continue;
    }
    if (limits.reserve && !(limits.views && rec.method === 0)) limits.reserve(rec.size); // throws: the caller refuses the upload
    const raw = buf.subarray(start, end);
    /** @type {Buffer} */
    let data;
    if (rec.method === 0) {
      if (rec.compressed !== rec.size) {
        fail('invalid_image', `"${name}" is stored with ${rec.compressed} bytes but says ${rec.size}`);
        continue;
      }
      if (limits.views) {
        data = raw;
      } else {
        // A copy (the upload's buffer is let go as soon as the zip is read), one entry per turn of the event loop:
        // ten 9 MiB entries copied in one turn cost it 100-400 ms (fresh pages faulted in).
        await nextTurn();
        data = Buffer.from(raw);
      }
    } else {
      try {
        // zlib stops at maxOutputLength (RangeError): the declared size is enforced while inflating.
        data = await inflateRaw(raw, { maxOutputLength: Math.max(1, rec.size) });
      } catch (err) {
        const e = /** @type {any} */ (err);
        if (e && e.code === 'ERR_BUFFER_TOO_LARGE') fail('input_too_large', `"${name}" inflates past the ${rec.size} bytes its zip entry declares; stopped there`);
        else fail('invalid_image', `"${name}" is not readable deflate data: ${e && e.message}`);
        continue;
      }
      if (data.length !== rec.size) {
        fail('invalid_image', `"${name}" inflates to ${data.length} bytes, its zip entry declares ${rec.size}`);
        continue;
      }
    }
    out.push({ name, data });
  }
  return { photos: out, renamed, skipped };
}

module.exports = { readZip, isZip, cleanName, uniqueName, MAX_NAME };
