'use strict';

/**
 * multer as both routers use it: files held in memory within the given limits, and a body multer cannot
 * read (truncated, no boundary) answered 400 bad_request rather than 500. No fileFilter: the declared type
 * decides nothing (phones send image/jpg, application/octet-stream or none); the worker sniffs the bytes and
 * answers unsupported_format naming what it found.
 *
 * @module pyworker-cutout/express/form
 */

const { requirePeer } = require('../optional');
const { HttpError } = require('./http-errors');

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
  const upload = multer({ storage: multer.memoryStorage(), limits });
  const parse = field === undefined ? upload.any() : upload.single(field);
  return (req, res, next) =>
    parse(req, res, (/** @type {any} */ err) => {
      if (!err || err instanceof HttpError) return next(err);
      if (err.name !== 'MulterError') return next(new HttpError(400, 'bad_request', `malformed multipart/form-data body: ${err.message}`));
      if (err.code === 'LIMIT_FILE_COUNT' && tooManyFiles) return next(new HttpError(413, 'input_too_large', tooManyFiles));
      next(err);
    });
}

module.exports = { formParser };
