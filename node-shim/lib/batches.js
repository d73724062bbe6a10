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

const fs = require('node:fs');
const path = require('node:path');
const { EventEmitter } = require('node:events');
const { randomUUID } = require('node:crypto');
const { requirePeer } = require('./optional');
const { sniffMime } = require('./mime');
const { WorkerError, QueueFullError, PoolClosedError } = require('./errors');

const MiB = 1024 * 1024;

/** Limits of batches, declared once (docs/reliability.md#round-2 says what each bounds). */
const BATCH_DEFAULTS = Object.freeze({
  // Photos of one batch, and their bytes (a zip's: inflated).
  maxFiles: 500,
  maxBytes: 200 * MiB,
  // One upload request's body, all its files and zips together.
  maxUploadBytes: 100 * MiB,
  // Bytes held at once by all batch uploads together: request bodies being read, then each photo's
  // input until it has run. Beyond it, a new upload is refused 503 + Retry-After before its body is read.
  maxTotalBytes: 256 * MiB,
  // Photos of one batch sent at once; the pool or queue queues the rest fairly
  // against other callers' jobs instead of this batch filling its queue.
  concurrency: 4,
  // A photo answered queue_full is sent again after a wait (doubling from 250 ms to 5 s), for at most this
  // long in all: a full queue is a reason to wait one's turn, not to fail (docs/queue.md#batches).
  queueFullWaitMs: 120_000,
  // A finished batch (with its results) is kept this long for results.zip.
  ttlMs: 60 * 60 * 1000,
  // Batches a store keeps (running or finished); at the cap the oldest finished one is forgotten early,
  // and when all are running a new one is refused 503.
  maxBatches: 200,
  // Result bytes a store keeps on disk; beyond, the oldest finished batches are forgotten early.
  maxDiskBytes: 2048 * MiB,
});

const EXT_BY_MIME = { 'image/png': 'png', 'image/webp': 'webp', 'image/jpeg': 'jpg' };

/**
 * @typedef {{name: string, data: Buffer}} BatchFile
 * @typedef {{name: string, error: {code: string, message: string}}} BatchFailure a photo refused before it ran
 *   (too large, unreadable in its zip): recorded failed at once
 * @typedef {object} BatchItem
 * @property {number} index
 * @property {string} name
 * @property {number} bytes
 * @property {'queued'|'done'|'failed'} status
 * @property {Buffer|null} result in memory (runBatch without a `keep`)
 * @property {string|null} file the result on disk (a BatchStore's `keep`)
 * @property {number} resultBytes
 * @property {string|null} mime
 * @property {Record<string, any>|null} meta
 * @property {{code: string, message: string}|null} error
 */

class Batch extends EventEmitter {
  /** @param {(BatchFile|BatchFailure)[]} files @param {string} [id] */
  constructor(files, id = randomUUID()) {
    super();
    this.id = id;
    this.createdAt = Date.now();
    /** @type {number|null} */
    this.finishedAt = null;
    /** @type {BatchItem[]} */
    this.items = files.map((f, index) => ({
      index,
      name: f.name,
      bytes: 'data' in f ? f.data.length : 0,
      status: 'queued',
      result: null,
      file: null,
      resultBytes: 0,
      mime: null,
      meta: null,
      error: null,
    }));
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

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/**
 * The files of a batch checked and named: Buffers become {name: photo-N, data}.
 * @param {(BatchFile|BatchFailure|Buffer)[]} files @returns {(BatchFile|BatchFailure)[]}
 */
function batchFiles(files) {
  if (!Array.isArray(files)) throw new TypeError('files must be an array of {name, data} or Buffers');
  /** @type {(BatchFile|BatchFailure)[]} */
  const list = files.map((f, i) => (Buffer.isBuffer(f) ? { name: `photo-${i + 1}`, data: f } : f));
  for (const f of list) {
    if (!f || (!('error' in f && f.error) && !(/** @type {BatchFile} */ (f).data instanceof Uint8Array))) throw new TypeError('each file must be a Buffer or {name, data: Buffer}');
  }
  if (list.length === 0) throw new WorkerError('a batch needs at least one photo', { code: 'bad_request' });
  return list;
}

/**
 * @typedef {object} RunHow
 * @property {number} [concurrency]
 * @property {string} [id]
 * @property {number} [queueFullWaitMs] how long in all a photo answered queue_full is sent again
 * @property {(item: BatchItem, result: {image: Buffer, mime: string}) => Promise<void>} [keep] where a result goes
 *   (default: item.result, in memory)
 * @property {(index: number, bytes: number) => void} [inputDone] a photo's input is not held any more
 * @property {boolean} [resumable] the batch is kept on disk and resumed by the next process: a photo refused
 *   because the remover closed (the app is stopping) stays queued instead of failing pool_closed
 */

/**
 * Run a batch on a remover (Pool or QueueClient).
 * @param {{removeWithMeta(image: Buffer, options?: Record<string, any>): Promise<any>}} remover
 * @param {(BatchFile|BatchFailure|Buffer)[]} files
 * @param {Record<string, any>} [options] remove options for every photo
 * @param {RunHow} [how]
 * @returns {Batch}
 */
function runBatch(remover, files, options = {}, how = {}) {
  const list = batchFiles(files);
  const batch = new Batch(list, how.id);
  startBatch(batch, list, remover, options, how);
  return batch;
}

/**
 * Send a batch's photos (those still queued) to the remover, `concurrency` at a time, from the next tick (so the
 * caller can listen for every event). Nothing is sent before this is called: a store that refuses the batch
 * (BatchStore.add) refuses it before any photo runs.
 * @param {Batch} batch
 * @param {(BatchFile|BatchFailure|{name: string, input: string}|null)[]} list its files, by index (null: not to be
 *   run; `input`: read from this file when its turn comes)
 * @param {{removeWithMeta(image: Buffer, options?: Record<string, any>): Promise<any>}} remover
 * @param {Record<string, any>} options remove options for every photo
 * @param {RunHow} [how]
 */
function startBatch(batch, list, remover, options, how = {}) {
  const concurrency = Math.max(1, how.concurrency || BATCH_DEFAULTS.concurrency);
  const waitMs = how.queueFullWaitMs ?? BATCH_DEFAULTS.queueFullWaitMs;
  const keep =
    how.keep ||
    (async (/** @type {BatchItem} */ item, /** @type {{image: Buffer}} */ r) => {
      item.result = r.image;
    });
  /** @param {Buffer} data */
  const send = async (data) => {
    const until = Date.now() + waitMs;
    let lost = 0;
    for (let wait = 250; ; wait = Math.min(5000, wait * 2)) {
      try {
        return await remover.removeWithMeta(data, options);
      } catch (err) {
        // The queue's Redis restarted and lost the job: nothing was done for it, and the batch still has its
        // input, so it is sent again (twice at most) rather than failed.
        if (/** @type {any} */ (err).code === 'job_lost' && lost++ < 2) continue;
        // Another caller filled the queue: wait our turn (bounded), do not fail the photo.
        if (!(err instanceof QueueFullError) || Date.now() + wait > until) throw err;
        await sleep(wait);
      }
    }
  };
  const todo = batch.items.filter((it) => it.status === 'queued' && list[it.index]).map((it) => it.index);
  let next = 0;
  let stopping = false;
  const lane = async () => {
    while (next < todo.length && !stopping) {
      const i = todo[next++];
      const item = batch.items[i];
      const f = /** @type {any} */ (list[i]);
      try {
        if (f.error) throw f.error;
        const r = await send(f.input ? await fs.promises.readFile(f.input) : f.data);
        if (r.fallback) throw r.error;
        await keep(item, r);
        item.status = 'done';
        item.resultBytes = r.image.length;
        item.mime = r.mime;
        item.meta = r.meta;
        batch.done += 1;
      } catch (err) {
        const e = /** @type {any} */ (err);
        if (how.resumable && e instanceof PoolClosedError) {
          // The app is stopping: this photo and those behind it are resumed by the next process, not failed.
          stopping = true;
          list[i] = null;
          if (how.inputDone) how.inputDone(i, item.bytes);
          return;
        }
        item.status = 'failed';
        item.error = { code: (e && e.code) || 'internal', message: String((e && e.message) || e) };
        batch.failed += 1;
      }
      list[i] = null; // the input is not needed any more
      if (how.inputDone) how.inputDone(i, item.bytes);
      batch._record(item);
    }
  };
  setImmediate(() => {
    for (let k = 0; k < Math.min(concurrency, todo.length); k++) lane();
  });
}

/** A file name safe inside a zip, unique within `taken`. @param {string} name @param {Set<string>} taken */
function zipEntryName(name, taken) {
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
 * Stream the batch's results as a zip into `out` (an HTTP response): one image per good photo (named after its
 * input, with the result's extension) and report.json with every photo's outcome: its file, or its error code and
 * message; its meta (compliance). Images are stored (already compressed), read from disk (or memory) 1 MiB at a
 * time and written with back-pressure: a client that reads slowly holds ~1 MiB, not the zip.
 * @param {Batch} batch
 * @param {import('node:stream').Writable} out
 */
async function writeBatchZip(batch, out) {
  const fflate = zipLib();
  /** @type {Uint8Array[]} */
  let pending = [];
  /** @type {Error|null} */
  let failed = null;
  const zip = new fflate.Zip((/** @type {Error|null} */ err, /** @type {Uint8Array} */ chunk) => {
    if (err) failed = err;
    else pending.push(chunk);
  });
  const flush = async () => {
    if (failed) throw failed;
    const chunks = pending;
    pending = [];
    for (const c of chunks) {
      if (out.destroyed) throw new Error('the client went away');
      if (!out.write(c)) await drained(out);
    }
  };
  const taken = new Set(['report.json']);
  const report = { ...batch.progress(), items: /** @type {any[]} */ ([]) };
  for (const it of batch.items) {
    /** @type {Record<string, any>} */
    const entry = { index: it.index, name: it.name, status: it.status };
    if (it.status === 'done' && (it.result || it.file)) {
      const stem = path.basename(it.name, path.extname(it.name));
      entry.file = zipEntryName(`${stem}.${EXT_BY_MIME[/** @type {keyof EXT_BY_MIME} */ (it.mime)] || 'bin'}`, taken);
      if (it.meta && it.meta.compliance) entry.compliance = it.meta.compliance;
      if (it.meta) entry.meta = it.meta;
      const f = new fflate.ZipPassThrough(entry.file);
      zip.add(f);
      if (it.result) {
        for (let o = 0; o < it.result.length; o += MiB) {
          f.push(it.result.subarray(o, o + MiB), false);
          await flush();
        }
      } else {
        for await (const c of fs.createReadStream(/** @type {string} */ (it.file), { highWaterMark: MiB })) {
          f.push(c, false);
          await flush();
        }
      }
      f.push(new Uint8Array(0), true);
    } else if (it.error) {
      entry.error = it.error;
    }
    report.items.push(entry);
  }
  const r = new fflate.ZipDeflate('report.json', { level: 6 });
  zip.add(r);
  r.push(Buffer.from(`${JSON.stringify(report, null, 2)}\n`), true);
  zip.end();
  await flush();
  out.end();
}

/** Until `out` drains or closes (both listeners removed after). @param {import('node:stream').Writable} out */
function drained(out) {
  return new Promise((resolve) => {
    const done = () => {
      out.off('drain', done);
      out.off('close', done);
      resolve(undefined);
    };
    out.on('drain', done);
    out.on('close', done);
  });
}

/** fflate, loaded on the first zip: batches of photos (runBatch, a queue's removeBatch) need none. */
function zipLib() {
  return requirePeer('fflate', 'Zip files of batches (results.zip)');
}

module.exports = { Batch, runBatch, startBatch, batchFiles, writeBatchZip, sniffMime, BATCH_DEFAULTS };
