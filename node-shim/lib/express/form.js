'use strict';

/**
 * multer as both routers use it: files held in memory within the given limits, and a body multer cannot
 * read (truncated, no boundary) answered 400 bad_request rather than 500. No fileFilter: the declared type
 * decides nothing (phones send image/jpg, application/octet-stream or none); the worker sniffs the bytes and
 * answers unsupported_format naming what it found.
 *
 * Files are kept by `chunkStorage`, not multer's memoryStorage. That one holds a file's chunks and then joins
 * them in one Buffer.concat: twice the file in memory at its end (three uploads of 83 MiB at once: 591 MB with
 * the zips' photos), and a 90 MiB zip cost the event loop 40-210 ms in one turn (docs/reliability.md#round-2).
 * chunkStorage copies a large file's chunks as they arrive into a Buffer sized from the request's Content-Length.
 *
 * @module pyworker-cutout/express/form
 */

const { setImmediate: nextTurn } = require('node:timers/promises');
const { requirePeer } = require('../optional');
const { HttpError } = require('./http-errors');

/** Bytes copied per turn of the event loop when a file is joined or trimmed (~1-5 ms of copying). */
const JOIN_SLICE = 4 * 1024 * 1024;

/**
 * A file's chunks as one Buffer, at most `slice` bytes (and one chunk) copied per turn of the event loop; each
 * chunk is let go once copied.
 * @param {(Buffer|null)[]} chunks @param {number} total their bytes @param {number} [slice]
 * @returns {Promise<Buffer>}
 */
async function joinChunks(chunks, total, slice = JOIN_SLICE) {
  if (chunks.length === 1 && chunks[0]) return chunks[0];
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  let thisTurn = 0;
  for (let i = 0; i < chunks.length; i++) {
    const c = /** @type {Buffer} */ (chunks[i]);
    if (thisTurn > 0 && thisTurn + c.length > slice) {
      await nextTurn();
      thisTurn = 0;
    }
    c.copy(out, at);
    at += c.length;
    thisTurn += c.length;
    chunks[i] = null;
  }
  return out;
}

/**
 * A multer storage engine: each file's bytes in `file.buffer` (as memoryStorage). A file's first JOIN_SLICE
 * bytes are kept as chunks (a photo of a few MB is joined once, as before); past them, with a Content-Length,
 * the file goes on into a Buffer of what is left of the request (at most the file limit), each chunk copied as
 * it arrives: a large upload is held once, not as chunks and then their join. A file that used less than half
 * of that room is copied out (a slice per turn), so it does not pin the larger allocation. Without a
 * Content-Length, chunks are kept and joined (joinChunks).
 * @param {{fileSize?: number}} [limits]
 * @returns {{_handleFile(req: any, file: any, cb: (err: unknown, info?: {buffer: Buffer, size: number}) => void): void, _removeFile(req: any, file: any, cb: (err: unknown) => void): void}}
 */
function chunkStorage(limits = {}) {
  const maxFile = Number.isFinite(limits.fileSize) ? /** @type {number} */ (limits.fileSize) + 1 : Infinity;
  /** Bytes of files already read, per request: what is left of its Content-Length bounds the next file. */
  const readSoFar = new WeakMap();
  return {
    _handleFile(req, file, cb) {
      const declared = Number(req.headers && req.headers['content-length']);
      const before = readSoFar.get(req) || 0;
      const room = Number.isFinite(declared) && declared > 0 ? Math.min(maxFile, Math.max(0, declared - before)) : 0;
      /** @type {Buffer|null} the file from JOIN_SLICE bytes on */
      let out = null;
      /** @type {(Buffer|null)[]} */
      let chunks = [];
      let size = 0;
      file.stream.on('data', (/** @type {Buffer} */ c) => {
        if (!out && size + c.length > JOIN_SLICE && size + c.length <= room) {
          out = Buffer.allocUnsafe(room);
          let at = 0;
          for (const k of chunks) at += /** @type {Buffer} */ (k).copy(/** @type {Buffer} */ (out), at);
          chunks = [];
        }
        if (out && chunks.length === 0 && size + c.length <= out.length) c.copy(out, size);
        else chunks.push(c); // no Content-Length, or past it (Node's parser does not let a body run past it)
        size += c.length;
      });
      file.stream.on('end', () => {
        readSoFar.set(req, before + size);
        const head = out;
        out = null;
        /** @type {Promise<Buffer>} */
        let done;
        if (!head) done = joinChunks(chunks, size);
        else {
          const filled = head.subarray(0, size - chunks.reduce((n, k) => n + /** @type {Buffer} */ (k).length, 0));
          if (chunks.length > 0) done = joinChunks([filled, ...chunks], size);
          else if (size < room / 2) done = joinChunks(slices(filled), size); // let the larger allocation go
          else done = Promise.resolve(filled);
        }
        done.then((buffer) => cb(null, { buffer, size }), cb);
      });
    },
    _removeFile(req, file, cb) {
      delete file.buffer;
      cb(null);
    },
  };
}

/** A Buffer as JOIN_SLICE views (copied by joinChunks a slice per turn). @param {Buffer} buf */
function slices(buf) {
  const out = [];
  for (let o = 0; o < buf.length; o += JOIN_SLICE) out.push(buf.subarray(o, o + JOIN_SLICE));
  return out.length > 0 ? out : [buf];
}

/**
 * @param {object} how
 * @param {Record<string, number>} how.limits multer's (fileSize, files, fields, fieldSize)
 * @param {string} [how.field] the one file field; omitted: files under any field name
 * @param {string} [how.tooManyFiles] the message of a 413 input_too_large when `limits.files` is passed
 *   (without it, multer's own "Too many files", a 400)
 * @returns {(req: any, res: any, next: (err?: unknown) => void) => void}
 */
function formParser({ limits, field, tooManyFiles }) {
  const multer = requirePeer('multer', 'pyworker-cutout/express (multipart uploads)');
  const upload = multer({ storage: chunkStorage(limits), limits });
  const parse = field === undefined ? upload.any() : upload.single(field);
  return (req, res, next) =>
    parse(req, res, (/** @type {any} */ err) => {
      if (!err || err instanceof HttpError) return next(err);
      if (err.name !== 'MulterError') return next(new HttpError(400, 'bad_request', `malformed multipart/form-data body: ${err.message}`));
      if (err.code === 'LIMIT_FILE_COUNT' && tooManyFiles) return next(new HttpError(413, 'input_too_large', tooManyFiles));
      next(err);
    });
}

module.exports = { formParser, chunkStorage, joinChunks, JOIN_SLICE };
