'use strict';

/**
 * Batches: many photos as one unit, with progress. A batch runs its photos on
 * any remover with the pool's shape (a Pool, or a QueueClient whose consumers
 * are on other machines), a few at a time, and emits one `progress` event per
 * photo as it finishes. A failed photo is recorded with its error code and
 * does not fail the rest. The results come out as a zip with a report.
 *
 * @module pyworker/batches
 */

const path = require('node:path');
const { EventEmitter } = require('node:events');
const { randomUUID } = require('node:crypto');
const { requirePeer } = require('./optional');
const { sniffMime } = require('./mime');
const { WorkerError } = require('./errors');

const MiB = 1024 * 1024;

/** Limits of one batch, declared once. */
const BATCH_DEFAULTS = Object.freeze({
  // Photos of one batch, and their bytes (for a zip: uncompressed).
  maxFiles: 500,
  maxBytes: 500 * MiB,
  // Photos of one batch sent at once; the pool or queue queues the rest fairly
  // against other callers' jobs instead of this batch filling its queue.
  concurrency: 4,
  // A finished batch (with its results) is kept this long for results.zip.
  ttlMs: 60 * 60 * 1000,
});

const EXT_BY_MIME = { 'image/png': 'png', 'image/webp': 'webp', 'image/jpeg': 'jpg' };
const IMAGE_NAME = /\.(jpe?g|png|webp|bmp)$/i;

/**
 * @typedef {{name: string, data: Buffer}} BatchFile
 * @typedef {object} BatchItem
 * @property {number} index
 * @property {string} name
 * @property {number} bytes
 * @property {'queued'|'done'|'failed'} status
 * @property {Buffer|null} result
 * @property {string|null} mime
 * @property {Record<string, any>|null} meta
 * @property {{code: string, message: string}|null} error
 */

class Batch extends EventEmitter {
  /** @param {BatchFile[]} files @param {string} [id] */
  constructor(files, id = randomUUID()) {
    super();
    this.id = id;
    this.createdAt = Date.now();
    /** @type {number|null} */
    this.finishedAt = null;
    /** @type {BatchItem[]} */
    this.items = files.map((f, index) => ({ index, name: f.name, bytes: f.data.length, status: 'queued', result: null, mime: null, meta: null, error: null }));
    this.total = this.items.length;
    this.done = 0;
    this.failed = 0;
    /** Progress events so far, in order: replayed to late listeners (SSE). */
    /** @type {Record<string, any>[]} */
    this.history = [];
    /** @type {Promise<Batch>} resolves when every photo has finished (never rejects) */
    this.finished = new Promise((resolve) => this.once('end', () => resolve(this)));
    // An 'error' event is never emitted; failures are in the items.
  }

  /** {id, total, done, failed, finished} */
  progress() {
    return { id: this.id, total: this.total, done: this.done, failed: this.failed, finished: this.finishedAt !== null };
  }

  /** The batch without result bytes (for JSON). */
  toJSON() {
    return {
      ...this.progress(),
      items: this.items.map((it) => ({ index: it.index, name: it.name, status: it.status, mime: it.mime, meta: it.meta, error: it.error })),
    };
  }

  /** @param {BatchItem} item */
  _record(item) {
    /** @type {Record<string, any>} */
    const ev = { ...this.progress(), index: item.index, name: item.name, ok: item.status === 'done' };
    if (item.error) ev.error = item.error;
    if (item.meta) ev.meta = item.meta; // the photo's report (sizes, face, compliance) for the page
    this.history.push(ev);
    this.emit('progress', ev);
    if (this.done + this.failed === this.total) {
      this.finishedAt = Date.now();
      this.emit('end', this.progress());
    }
  }
}

/**
 * Run a batch on a remover (Pool or QueueClient).
 * @param {{removeWithMeta(image: Buffer, options?: Record<string, any>): Promise<any>}} remover
 * @param {(BatchFile|Buffer)[]} files
 * @param {Record<string, any>} [options] remove options for every photo
 * @param {{concurrency?: number, id?: string}} [how]
 * @returns {Batch}
 */
function runBatch(remover, files, options = {}, how = {}) {
  if (!Array.isArray(files)) throw new TypeError('files must be an array of {name, data} or Buffers');
  const list = files.map((f, i) => (Buffer.isBuffer(f) ? { name: `photo-${i + 1}`, data: f } : f));
  for (const f of list) {
    if (!f || !(f.data instanceof Uint8Array)) throw new TypeError('each file must be a Buffer or {name, data: Buffer}');
  }
  if (list.length === 0) throw new WorkerError('a batch needs at least one photo', { code: 'bad_request' });
  const batch = new Batch(list, how.id);
  const concurrency = Math.max(1, how.concurrency || BATCH_DEFAULTS.concurrency);
  let next = 0;
  const lane = async () => {
    while (next < list.length) {
      const i = next++;
      const item = batch.items[i];
      try {
        const r = await remover.removeWithMeta(list[i].data, options);
        if (r.fallback) throw r.error;
        item.status = 'done';
        item.result = r.image;
        item.mime = r.mime;
        item.meta = r.meta;
        batch.done += 1;
      } catch (err) {
        const e = /** @type {any} */ (err);
        item.status = 'failed';
        item.error = { code: (e && e.code) || 'internal', message: String((e && e.message) || e) };
        batch.failed += 1;
      }
      list[i] = /** @type {any} */ (null); // the input is not needed any more
      batch._record(item);
    }
  };
  // Started on the next tick, so the caller can listen for every event.
  setImmediate(() => {
    for (let k = 0; k < Math.min(concurrency, list.length); k++) lane();
  });
  return batch;
}

/** A file name safe inside a zip, unique within `taken`. @param {string} name @param {Set<string>} taken */
function uniqueName(name, taken) {
  let base = path.basename(String(name)).replace(/[^\w.\- ]+/g, '_') || 'photo';
  if (!taken.has(base)) {
    taken.add(base);
    return base;
  }
  const ext = path.extname(base);
  const stem = base.slice(0, base.length - ext.length);
  for (let n = 2; ; n++) {
    base = `${stem}-${n}${ext}`;
    if (!taken.has(base)) {
      taken.add(base);
      return base;
    }
  }
}

/**
 * The batch's results as a zip: one image per good photo (named after its
 * input, with the result's extension) and report.json with every photo's
 * outcome: its file, or its error code and message; its meta (compliance).
 * @param {Batch} batch
 * @returns {Buffer}
 */
function batchZip(batch) {
  /** @type {Record<string, [Uint8Array, {level: 0|6}]>} */
  const files = {};
  const taken = new Set(['report.json']);
  const report = { ...batch.progress(), items: /** @type {any[]} */ ([]) };
  for (const it of batch.items) {
    /** @type {Record<string, any>} */
    const entry = { index: it.index, name: it.name, status: it.status };
    if (it.status === 'done' && it.result) {
      const stem = path.basename(it.name, path.extname(it.name));
      entry.file = uniqueName(`${stem}.${EXT_BY_MIME[/** @type {keyof EXT_BY_MIME} */ (it.mime)] || 'bin'}`, taken);
      files[entry.file] = [it.result, { level: 0 }]; // already compressed images: store
      if (it.meta && it.meta.compliance) entry.compliance = it.meta.compliance;
      if (it.meta) entry.meta = it.meta;
    } else if (it.error) {
      entry.error = it.error;
    }
    report.items.push(entry);
  }
  files['report.json'] = [Buffer.from(`${JSON.stringify(report, null, 2)}\n`), { level: 6 }];
  return Buffer.from(zipLib().zipSync(files));
}

/**
 * The photos of an uploaded zip (images only; folders, dot files and
 * __MACOSX skipped), within the batch limits.
 * @param {Buffer} zip
 * @param {{maxFiles?: number, maxBytes?: number}} [limits]
 * @returns {BatchFile[]}
 */
function photosFromZip(zip, limits = {}) {
  const maxFiles = limits.maxFiles ?? BATCH_DEFAULTS.maxFiles;
  const maxBytes = limits.maxBytes ?? BATCH_DEFAULTS.maxBytes;
  let count = 0;
  let bytes = 0;
  /** @type {WorkerError|null} */
  let tooMuch = null;
  let entries;
  const fflate = zipLib(); // outside the try: a missing package is not an unreadable zip
  try {
    entries = fflate.unzipSync(zip, {
      // Decided on the central directory's sizes, before anything is inflated (zip bombs).
      filter(f) {
        const base = path.basename(f.name);
        if (f.name.endsWith('/') || f.name.startsWith('__MACOSX/') || base.startsWith('.') || !IMAGE_NAME.test(base)) return false;
        count += 1;
        bytes += f.originalSize;
        if (count > maxFiles) tooMuch = new WorkerError(`the zip holds more than ${maxFiles} photos (maxFiles)`, { code: 'input_too_large' });
        else if (bytes > maxBytes) tooMuch = new WorkerError(`the zip's photos exceed ${(maxBytes / MiB).toFixed(0)}MB uncompressed (maxBytes)`, { code: 'input_too_large' });
        return !tooMuch;
      },
    });
  } catch (err) {
    throw new WorkerError(`not a readable zip: ${/** @type {Error} */ (err).message}`, { code: 'invalid_image' });
  }
  if (tooMuch) throw tooMuch;
  const out = Object.entries(entries).map(([name, data]) => ({ name, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) }));
  if (out.length === 0) throw new WorkerError('the zip holds no photo (.jpg, .jpeg, .png, .webp, .bmp)', { code: 'bad_request' });
  return out;
}

/** fflate, loaded on the first zip: batches of photos (runBatch, a queue's removeBatch) need none. */
function zipLib() {
  return requirePeer('fflate', 'Zip files of batches (results.zip, a zip upload)');
}

/** True for the bytes of a zip file. @param {Buffer} buf */
function isZip(buf) {
  return buf.length >= 4 && buf[0] === 0x50 && buf[1] === 0x4b && buf[2] === 0x03 && buf[3] === 0x04;
}

/**
 * Batches of one process, by id, each forgotten `ttlMs` after it finished.
 */
class BatchStore {
  /** @param {{ttlMs?: number}} [opts] */
  constructor(opts = {}) {
    this.ttlMs = opts.ttlMs ?? BATCH_DEFAULTS.ttlMs;
    /** @type {Map<string, Batch>} */
    this.batches = new Map();
  }

  /** @param {Batch} batch */
  add(batch) {
    this.batches.set(batch.id, batch);
    batch.finished.then(() => {
      const t = setTimeout(() => this.batches.delete(batch.id), this.ttlMs);
      t.unref();
    });
    return batch;
  }

  /** @param {string} id */
  get(id) {
    return this.batches.get(id);
  }
}

module.exports = { Batch, BatchStore, runBatch, batchZip, photosFromZip, isZip, sniffMime, BATCH_DEFAULTS };
