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
const os = require('node:os');
const path = require('node:path');
const { EventEmitter } = require('node:events');
const { randomUUID } = require('node:crypto');
const { requirePeer } = require('./optional');
const { sniffMime } = require('./mime');
const { WorkerError, QueueFullError } = require('./errors');

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
 * @param {(BatchFile|BatchFailure|null)[]} list its files, by index (null: not to be run)
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
    for (let wait = 250; ; wait = Math.min(5000, wait * 2)) {
      try {
        return await remover.removeWithMeta(data, options);
      } catch (err) {
        // Another caller filled the queue: wait our turn (bounded), do not fail the photo.
        if (!(err instanceof QueueFullError) || Date.now() + wait > until) throw err;
        await sleep(wait);
      }
    }
  };
  const todo = batch.items.filter((it) => it.status === 'queued' && list[it.index]).map((it) => it.index);
  let next = 0;
  const lane = async () => {
    while (next < todo.length) {
      const i = todo[next++];
      const item = batch.items[i];
      const f = /** @type {BatchFile|BatchFailure} */ (list[i]);
      try {
        if ('error' in f && f.error) throw f.error;
        const r = await send(/** @type {BatchFile} */ (f).data);
        if (r.fallback) throw r.error;
        await keep(item, r);
        item.status = 'done';
        item.resultBytes = r.image.length;
        item.mime = r.mime;
        item.meta = r.meta;
        batch.done += 1;
      } catch (err) {
        const e = /** @type {any} */ (err);
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

/**
 * Batches of one process, by id, each forgotten `ttlMs` after it finished. Their results are files in a
 * directory of its own (under the OS's temporary directory, removed when the process exits), not the heap:
 * what the store keeps is bounded by `maxBatches` and `maxDiskBytes`, the oldest finished batches forgotten
 * first when a new one needs the room.
 *
 * With `dir` (a directory of the app's), the store is kept across restarts: each batch's state is written
 * beside its results (`<id>.json`, at every photo's end), and a new store on the same directory answers for
 * them. A photo that had not finished when the process stopped (SIGKILL, a crash) is failed `job_lost`,
 * saying so: every photo is accounted for.
 */
class BatchStore {
  /** @param {{ttlMs?: number, maxBatches?: number, maxDiskBytes?: number, dir?: string}} [opts] */
  constructor(opts = {}) {
    this.ttlMs = opts.ttlMs ?? BATCH_DEFAULTS.ttlMs;
    this.maxBatches = opts.maxBatches ?? BATCH_DEFAULTS.maxBatches;
    this.maxDiskBytes = opts.maxDiskBytes ?? BATCH_DEFAULTS.maxDiskBytes;
    /** @type {Map<string, Batch>} in the order added */
    this.batches = new Map();
    this.diskBytes = 0;
    /** @type {string|null} made on the first result */
    this._dir = opts.dir ?? null;
    /** Batch states are written to `dir` and read back by the next store on it. */
    this.persistent = Boolean(opts.dir);
    /** @type {Map<string, {writing: boolean, again: boolean}>} */
    this._saving = new Map();
    if (this.persistent) this._load();
  }

  /** The batches a store on this directory kept (the newest maxBatches), read once at start. */
  _load() {
    const dir = /** @type {string} */ (this._dir);
    fs.mkdirSync(dir, { recursive: true });
    const states = [];
    for (const name of fs.readdirSync(dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        states.push(JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')));
      } catch {
        fs.rmSync(path.join(dir, name), { force: true }); // half-written by a process killed mid-write
      }
    }
    states.sort((a, b) => a.createdAt - b.createdAt);
    for (const st of states.slice(0, Math.max(0, states.length - this.maxBatches))) {
      fs.rmSync(path.join(dir, `${st.id}.json`), { force: true }); // beyond the cap: the oldest go
      for (const it of st.items) if (it.file) fs.rmSync(it.file, { force: true });
    }
    for (const st of states.slice(-this.maxBatches)) {
      const b = new Batch(st.items.map((/** @type {any} */ it) => ({ name: it.name, error: it.error || { code: '', message: '' } })), st.id);
      b.createdAt = st.createdAt;
      b.history = st.history;
      /** @type {BatchItem[]} */
      const lost = [];
      for (const [i, it] of st.items.entries()) {
        const item = b.items[i];
        Object.assign(item, { status: it.status, file: it.file, resultBytes: it.resultBytes || 0, mime: it.mime, meta: it.meta, error: it.error, bytes: it.bytes || 0 });
        if (item.status === 'done') b.done += 1;
        else if (item.status === 'failed') b.failed += 1;
        else lost.push(item);
        if (item.file) this.diskBytes += item.resultBytes;
      }
      for (const item of lost) {
        item.status = 'failed';
        item.error = { code: 'job_lost', message: 'the app server stopped before this photo finished (it was restarted); send it again' };
        b.failed += 1;
        b.history.push({ id: b.id, total: b.total, done: b.done, failed: b.failed, finished: b.done + b.failed === b.total, index: item.index, name: item.name, ok: false, error: item.error });
      }
      const finishedAt = st.finishedAt ?? Date.now();
      b.finishedAt = finishedAt;
      b.emit('end', b.progress());
      this.batches.set(b.id, b);
      const left = Math.max(0, finishedAt + this.ttlMs - Date.now());
      setTimeout(() => this.forget(b.id), left).unref();
      if (st.finishedAt === null) this._save(b);
    }
  }

  /** What is written of a batch. @param {Batch} b */
  _state(b) {
    return { ...b.progress(), createdAt: b.createdAt, finishedAt: b.finishedAt, history: b.history, items: b.items.map(({ result, ...it }) => it) };
  }

  /** Write a batch's state (coalesced: one write at a time, the last state always written). @param {Batch} b */
  _save(b) {
    if (!this.persistent) return;
    let s = this._saving.get(b.id);
    if (!s) this._saving.set(b.id, (s = { writing: false, again: false }));
    if (s.writing) {
      s.again = true;
      return;
    }
    s.writing = true;
    const file = path.join(this.dir(), `${b.id}.json`);
    const state = this._state(b);
    fs.promises
      .writeFile(`${file}.tmp`, JSON.stringify(state))
      .then(() => fs.promises.rename(`${file}.tmp`, file))
      .catch(() => {})
      .finally(() => {
        s.writing = false;
        if (!this.batches.has(b.id)) {
          this._saving.delete(b.id);
          fs.rm(file, { force: true }, () => {});
        } else if (s.again) {
          s.again = false;
          this._save(b);
        } else {
          this._saving.delete(b.id);
        }
      });
  }

  /** The directory of the results, made on first use and removed at exit (unless given). */
  dir() {
    if (!this._dir) {
      this._dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pyworker-batches-'));
      const dir = this._dir;
      process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    }
    return this._dir;
  }

  /**
   * Admit a batch (throws QueueFullError when every kept batch is still running); call before runBatch.
   * @returns {void}
   */
  admit() {
    if (this.batches.size < this.maxBatches) return;
    for (const b of this.batches.values()) {
      if (b.finishedAt !== null) {
        this.forget(b.id); // the oldest finished batch makes room
        return;
      }
    }
    throw new QueueFullError(`${this.batches.size} batches are running (maxBatches ${this.maxBatches}); retry later`, { maxQueue: this.maxBatches });
  }

  /** @param {Batch} batch */
  add(batch) {
    this.batches.set(batch.id, batch);
    if (this.persistent) {
      // Written before the batch is answered 202: a process killed right after still knows it (a few KB, once).
      const file = path.join(this.dir(), `${batch.id}.json`);
      fs.writeFileSync(`${file}.tmp`, JSON.stringify(this._state(batch)));
      fs.renameSync(`${file}.tmp`, file);
      batch.on('progress', () => this._save(batch));
    }
    batch.finished.then(() => {
      const t = setTimeout(() => this.forget(batch.id), this.ttlMs);
      t.unref();
    });
    return batch;
  }

  /**
   * runBatch's `keep`: the result written to this store's directory, then let go.
   * @param {BatchItem & {batchId?: string}} item @param {{image: Buffer}} r @param {string} batchId
   */
  async keep(item, r, batchId) {
    const need = r.image.length;
    for (const b of this.batches.values()) {
      if (this.diskBytes + need <= this.maxDiskBytes) break;
      if (b.finishedAt !== null) this.forget(b.id);
    }
    if (this.diskBytes + need > this.maxDiskBytes) {
      throw new QueueFullError(`the batch result store is full (${(this.diskBytes / MiB).toFixed(0)}MB of maxDiskBytes ${(this.maxDiskBytes / MiB).toFixed(0)}MB, all running); retry later`, { maxQueue: 0 });
    }
    const file = path.join(this.dir(), `${batchId}-${item.index}`);
    this.diskBytes += need;
    try {
      await fs.promises.writeFile(file, r.image);
    } catch (err) {
      this.diskBytes -= need;
      throw err;
    }
    item.file = file;
  }

  /** Drop a batch and its files. @param {string} id */
  forget(id) {
    const b = this.batches.get(id);
    if (!b) return;
    this.batches.delete(id);
    if (this.persistent && !this._saving.has(id)) fs.rm(path.join(this.dir(), `${id}.json`), { force: true }, () => {});
    for (const it of b.items) {
      if (it.file) {
        this.diskBytes -= it.resultBytes;
        fs.rm(it.file, { force: true }, () => {});
        it.file = null;
      }
    }
  }

  /** @param {string} id */
  get(id) {
    return this.batches.get(id);
  }
}

module.exports = { Batch, BatchStore, runBatch, startBatch, batchFiles, writeBatchZip, sniffMime, BATCH_DEFAULTS };
