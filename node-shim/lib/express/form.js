'use strict';

/**
 * multer as both routers use it: files held in memory within the given limits, and a body multer cannot
 * read (truncated, no boundary) answered 400 bad_request rather than 500. No fileFilter: the declared type
 * decides nothing (phones send image/jpg, application/octet-stream or none); the worker sniffs the bytes and
 * answers unsupported_format naming what it found.
 *
 * Files are kept by `chunkStorage`, not multer's memoryStorage: that one joins a file's chunks in one
 * Buffer.concat, and a 90 MiB zip cost the event loop 40-210 ms there (fresh pages are faulted in as they are
 * copied), in the same turn as the zip's reading (docs/reliability.md#round-2).
 *
 * @module pyworker-cutout/express/form
 */

const { setImmediate: nextTurn } = require('node:timers/promises');
const { requirePeer } = require('../optional');
const { HttpError } = require('./http-errors');

/** Bytes a file's chunks are copied into its Buffer per turn of the event loop (~1-5 ms of copying). */
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
 * A multer storage engine: each file's bytes in `file.buffer` (as memoryStorage), joined by joinChunks.
 * @returns {{_handleFile(req: any, file: any, cb: (err: unknown, info?: {buffer: Buffer, size: number}) => void): void, _removeFile(req: any, file: any, cb: (err: unknown) => void): void}}
 */
function chunkStorage() {
  return {
    _handleFile(req, file, cb) {
      /** @type {Buffer[]} */
      const chunks = [];
      let size = 0;
      file.stream.on('data', (/** @type {Buffer} */ c) => {
        chunks.push(c);
        size += c.length;
      });
      file.stream.on('end', () => joinChunks(chunks, size).then((buffer) => cb(null, { buffer, size }), cb));
    },
    _removeFile(req, file, cb) {
      delete file.buffer;
      cb(null);
    },
  };
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
  const upload = multer({ storage: chunkStorage(), limits });
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
