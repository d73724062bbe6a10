'use strict';

/**
 * Where batches are kept: by id, each forgotten `ttlMs` after it finished, their results (and, until each photo
 * has run, their inputs) as files on disk, not the heap. What a store keeps is bounded by `maxBatches` and
 * `maxDiskBytes`, the oldest finished batches forgotten first when a new one needs the room.
 *
 * By default the directory outlives the process (docs/queue.md#batches): one per app and user under the OS's
 * temporary directory, named from the app's working directory and main script, so a restarted app finds it.
 * Each batch's state is written beside its files (`<id>.json`, before the 202, then at every photo's end) with
 * its owner (pid and a per-process run id). A store that starts takes over every batch whose owner is gone,
 * one store only (a claim directory made atomically), leaving those of live processes (a cluster's other
 * workers) alone: it answers for them, and `resume()` sends their unfinished photos again from their inputs on
 * disk, so a SIGTERM, a SIGKILL or a crash loses no photo. `dir: false`: a directory of the process's own,
 * removed at exit (batches end with the process).
 *
 * @module pyworker/batch-store
 */

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createHash, randomUUID } = require('node:crypto');
const { Batch, startBatch, BATCH_DEFAULTS } = require('./batches');
const { QueueFullError } = require('./errors');

const MiB = 1024 * 1024;
/** This process's run: a pid alone is reused (a container's app is pid 1 after every restart). */
const RUN = randomUUID();
/** Inputs written at once when a batch is admitted. */
const WRITE_LANES = 8;

/**
 * The default directory: the same for every start of one app (working directory and main script) by one user.
 * @param {{cwd?: string, main?: string}} [app] this process's, unless given
 * @returns {string}
 */
function defaultStoreDir({ cwd = process.cwd(), main = process.argv[1] || '' } = {}) {
  const uid = typeof process.getuid === 'function' ? process.getuid() : os.userInfo().username;
  const key = createHash('sha256').update(`${uid}\0${cwd}\0${main}`).digest('hex').slice(0, 16);
  return path.join(os.tmpdir(), `pyworker-batches-${key}`);
}

/** Is this process running (a zombie or another user's counts as running)? @param {number} pid */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code === 'EPERM';
  }
}

/**
 * @typedef {import('./batches').BatchItem & {input?: string|null}} StoredItem
 * @typedef {{id: string, createdAt: number, finishedAt: number|null, owner?: {pid: number, run: string},
 *   options?: Record<string, any>, history: Record<string, any>[], items: any[]}} BatchState
 */

class BatchStore {
  /** @param {{ttlMs?: number, maxBatches?: number, maxDiskBytes?: number, dir?: string|false}} [opts] */
  constructor(opts = {}) {
    this.ttlMs = opts.ttlMs ?? BATCH_DEFAULTS.ttlMs;
    this.maxBatches = opts.maxBatches ?? BATCH_DEFAULTS.maxBatches;
    this.maxDiskBytes = opts.maxDiskBytes ?? BATCH_DEFAULTS.maxDiskBytes;
    /** @type {Map<string, Batch>} in the order added */
    this.batches = new Map();
    this.diskBytes = 0;
    const dir = opts.dir === undefined ? defaultStoreDir() : opts.dir;
    /** Batch states are written to the directory and taken over by the next store on it. */
    this.persistent = Boolean(dir);
    /** @type {string|null} made on first use when not persistent */
    this._dir = dir || null;
    /** @type {Map<string, {writing: boolean, again: boolean}>} */
    this._saving = new Map();
    /** @type {Map<string, Record<string, any>>} the remove options of each batch, for resume() */
    this._options = new Map();
    /** @type {{batch: Batch, list: ({name: string, input: string}|null)[]}[]} taken over with photos left to run */
    this._unfinished = [];
    /** @type {Map<string, string>} the claim directory of each batch taken over */
    this._claims = new Map();
    if (this.persistent) this._load();
  }

  /** The directory of the batches (made on first use; a private one is removed at exit). */
  dir() {
    if (!this._dir) {
      this._dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pyworker-batches-'));
      const dir = this._dir;
      process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    }
    return this._dir;
  }

  /** Take over the batches of owners that are gone (the newest maxBatches of them), once at start. */
  _load() {
    const dir = this.dir();
    const claims = path.join(dir, 'claims');
    fs.mkdirSync(claims, { recursive: true, mode: 0o700 });
    /** @type {BatchState[]} */
    const states = [];
    for (const name of fs.readdirSync(dir)) {
      if (!name.endsWith('.json')) continue;
      /** @type {BatchState} */
      let st;
      try {
        st = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8'));
      } catch {
        continue; // forgotten meanwhile by its owner (states are renamed into place: never half-written)
      }
      if (this._claim(st)) states.push(st);
    }
    states.sort((a, b) => a.createdAt - b.createdAt);
    for (const st of states.slice(0, Math.max(0, states.length - this.maxBatches))) {
      // Beyond the cap: the oldest go.
      fs.rmSync(path.join(dir, `${st.id}.json`), { force: true });
      for (const it of st.items) for (const f of [it.file, it.input]) if (f) fs.rmSync(f, { force: true });
      fs.rmSync(path.join(claims, /** @type {string} */ (this._claims.get(st.id))), { recursive: true, force: true });
      this._claims.delete(st.id);
    }
    for (const st of states.slice(-this.maxBatches)) this._adopt(st);
  }

  /**
   * Is this batch ours to take over? Its owner must be gone, and of the stores starting now only the one that
   * makes its claim directory (named after the owner's run, so made once) takes it.
   * @param {BatchState} st
   */
  _claim(st) {
    const owner = st.owner || { pid: 0, run: 'none' };
    if (owner.run === RUN) return false; // another store of this process
    if (owner.pid !== process.pid && alive(owner.pid)) return false; // another live process (a cluster's worker)
    const claims = path.join(this.dir(), 'claims');
    const mine = `${st.id}.${owner.run}`;
    try {
      fs.mkdirSync(path.join(claims, mine));
    } catch {
      return false; // another store took it first
    }
    // Kept until the batch is forgotten (a store that read the old owner must still find it taken); the claims of
    // earlier owners go.
    for (const name of fs.readdirSync(claims)) if (name.startsWith(`${st.id}.`) && name !== mine) fs.rmSync(path.join(claims, name), { recursive: true, force: true });
    this._claims.set(st.id, mine);
    return true;
  }

  /** A batch taken over: answered for; its unfinished photos resumed from their inputs, or failed. @param {BatchState} st */
  _adopt(st) {
    const b = new Batch(
      st.items.map((/** @type {any} */ it) => ({ name: it.name, error: it.error || { code: '', message: '' } })),
      st.id,
    );
    b.createdAt = st.createdAt;
    b.history = st.history;
    /** @type {({name: string, input: string}|null)[]} */
    const list = [];
    /** @type {StoredItem[]} */
    const lost = [];
    for (const [i, it] of st.items.entries()) {
      const item = /** @type {StoredItem} */ (b.items[i]);
      Object.assign(item, { status: it.status, file: it.file, resultBytes: it.resultBytes || 0, mime: it.mime, meta: it.meta, error: it.error, bytes: it.bytes || 0, input: it.input || null });
      list.push(null);
      if (item.status === 'done') b.done += 1;
      else if (item.status === 'failed') b.failed += 1;
      if (item.file) this.diskBytes += item.resultBytes;
      if (item.status !== 'queued') {
        if (item.input) fs.rmSync(item.input, { force: true }); // ran; removed after its state was written
        item.input = null;
      } else if (item.input && fs.existsSync(item.input)) {
        this.diskBytes += item.bytes;
        list[i] = { name: item.name, input: item.input };
      } else {
        lost.push(item);
      }
    }
    this.batches.set(b.id, b);
    this._options.set(b.id, st.options || {});
    this._watch(b);
    if (st.finishedAt !== null) {
      b.finishedAt = st.finishedAt;
      b.emit('end', b.progress());
    }
    for (const item of lost) {
      item.status = 'failed';
      item.error = { code: 'job_lost', message: 'the app server stopped before this photo finished and its input was not kept; send it again' };
      b.failed += 1;
      b._record(item); // the last one ends the batch
    }
    if (b.finishedAt === null && b.done + b.failed === b.total) {
      b.finishedAt = Date.now(); // stopped between its last photo's end and the state saying so
      b.emit('end', b.progress());
    }
    if (b.finishedAt === null) this._unfinished.push({ batch: b, list });
    this._save(b); // owned by this process now
  }

  /**
   * Send the photos of the batches taken over at start that had not run (the app server stopped first) to the
   * remover, as a new batch's are; once (the router calls it when it starts).
   * @param {{removeWithMeta(image: Buffer, options?: Record<string, any>): Promise<any>}} remover
   * @param {{concurrency?: number, queueFullWaitMs?: number}} [how]
   */
  resume(remover, how = {}) {
    const todo = this._unfinished;
    this._unfinished = [];
    for (const { batch, list } of todo) {
      startBatch(batch, list, remover, this._options.get(batch.id) || {}, {
        ...how,
        keep: (item, r) => this.keep(item, r, batch.id),
        resumable: this.persistent,
      });
    }
    return todo.length;
  }

  /** What is written of a batch. @param {Batch} b */
  _state(b) {
    return {
      ...b.progress(),
      createdAt: b.createdAt,
      finishedAt: b.finishedAt,
      owner: { pid: process.pid, run: RUN },
      options: this._options.get(b.id) || {},
      history: b.history,
      items: b.items.map(({ result, ...it }) => it),
    };
  }

  /**
   * Write a batch's state (coalesced: one write at a time, the last state always written). Inputs of photos
   * that have run are removed once a state saying so is on disk: a process killed in between resumes them.
   * @param {Batch} b
   */
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
    const ran = /** @type {StoredItem[]} */ (b.items).filter((it) => it.status !== 'queued' && it.input);
    fs.promises
      .writeFile(`${file}.tmp`, JSON.stringify(state))
      .then(() => fs.promises.rename(`${file}.tmp`, file))
      .then(() => {
        for (const it of ran) {
          if (!it.input) continue;
          fs.rm(it.input, { force: true }, () => {});
          this.diskBytes -= it.bytes;
          it.input = null;
        }
      })
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

  /** Saved at every photo's end, forgotten ttlMs after the last. @param {Batch} b */
  _watch(b) {
    if (this.persistent) b.on('progress', () => this._save(b));
    b.finished.then(() => {
      const left = Math.max(0, (b.finishedAt ?? Date.now()) + this.ttlMs - Date.now());
      setTimeout(() => this.forget(b.id), left).unref();
    });
  }

  /** Make room for one more batch (throws QueueFullError when every kept batch is still running); call before add. */
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

  /**
   * Keep a new batch; with a persistent store its photos' inputs and its state are written first (before the
   * 202): a process killed right after resumes it. Throws (and keeps nothing) when the disk budget or the disk
   * refuses; the batch must not be started before this resolves.
   * @param {Batch} batch
   * @param {{files?: ({name: string, data: Buffer}|{name: string, error: any})[], options?: Record<string, any>}} [run]
   */
  async add(batch, run = {}) {
    this._options.set(batch.id, run.options || {});
    this.batches.set(batch.id, batch);
    if (this.persistent) {
      try {
        await this._writeInputs(batch, run.files || []);
        const file = path.join(this.dir(), `${batch.id}.json`);
        await fs.promises.writeFile(`${file}.tmp`, JSON.stringify(this._state(batch)));
        await fs.promises.rename(`${file}.tmp`, file);
      } catch (err) {
        this.forget(batch.id);
        throw err;
      }
    }
    this._watch(batch);
    return batch;
  }

  /** Each photo's input to `<id>-<index>.in`, within maxDiskBytes. @param {Batch} batch @param {any[]} files */
  async _writeInputs(batch, files) {
    const items = /** @type {StoredItem[]} */ (batch.items);
    const need = files.reduce((n, f) => n + (f && f.data ? f.data.length : 0), 0);
    this._room(need);
    let next = 0;
    const lane = async () => {
      while (next < files.length) {
        const i = next++;
        const f = files[i];
        if (!f || !f.data) continue;
        const file = path.join(this.dir(), `${batch.id}-${i}.in`);
        this.diskBytes += f.data.length;
        items[i].input = file; // counted and removed with the batch from here on
        await fs.promises.writeFile(file, f.data);
      }
    };
    await Promise.all(Array.from({ length: WRITE_LANES }, lane));
  }

  /**
   * A new batch's run list with its photos read from their inputs on disk (written by add) instead of memory.
   * @param {Batch} batch @param {any[]} files
   * @returns {any[]}
   */
  inputsOf(batch, files) {
    const items = /** @type {StoredItem[]} */ (batch.items);
    return files.map((f, i) => (f && f.data && items[i].input ? { name: f.name, input: items[i].input } : f));
  }

  /** Room for `need` more bytes on disk: finished batches forgotten, oldest first; else QueueFullError. @param {number} need */
  _room(need) {
    for (const b of this.batches.values()) {
      if (this.diskBytes + need <= this.maxDiskBytes) break;
      if (b.finishedAt !== null) this.forget(b.id);
    }
    if (this.diskBytes + need > this.maxDiskBytes) {
      throw new QueueFullError(`the batch store is full (${(this.diskBytes / MiB).toFixed(0)}MB of maxDiskBytes ${(this.maxDiskBytes / MiB).toFixed(0)}MB, all running); retry later`, { maxQueue: 0 });
    }
  }

  /**
   * runBatch's `keep`: the result written to this store's directory, then let go.
   * @param {import('./batches').BatchItem} item @param {{image: Buffer}} r @param {string} batchId
   */
  async keep(item, r, batchId) {
    const need = r.image.length;
    this._room(need);
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
    this._options.delete(id);
    if (this.persistent) {
      if (!this._saving.has(id)) fs.rm(path.join(this.dir(), `${id}.json`), { force: true }, () => {});
      const claim = this._claims.get(id);
      if (claim) fs.rm(path.join(this.dir(), 'claims', claim), { recursive: true, force: true }, () => {});
      this._claims.delete(id);
    }
    for (const it of /** @type {StoredItem[]} */ (b.items)) {
      if (it.file) {
        this.diskBytes -= it.resultBytes;
        fs.rm(it.file, { force: true }, () => {});
        it.file = null;
      }
      if (it.input) {
        this.diskBytes -= it.bytes;
        fs.rm(it.input, { force: true }, () => {});
        it.input = null;
      }
    }
  }

  /** @param {string} id */
  get(id) {
    return this.batches.get(id);
  }
}

module.exports = { BatchStore, defaultStoreDir };
