'use strict';

/**
 * `require('pyworker-cutout/express')`: background removal as an Express router.
 *
 * @example
 * const express = require('express');
 * const { createRouter } = require('pyworker-cutout/express');
 * const app = express();
 * app.use('/api', createRouter()); // POST /api/remove-background, GET /api/health
 * app.use(createBatchRouter({ remover: getDefaultPool() })); // POST /api/batches, ..., the page at GET /
 *
 * @module pyworker-cutout/express
 */

const { createRouter, ACCEPTED_TYPES } = require('./lib/express/router');
const { health, procMemory } = require('./lib/express/health');
const { errorResponse, HttpError, STATUS_BY_CODE } = require('./lib/express/http-errors');
const { optionsFromFields, FIELD_PARSERS } = require('./lib/express/fields');

/**
 * Batches with progress and their page (lib/express/batch-router.js), for `app.use(createBatchRouter({remover}))`.
 * @param {Parameters<typeof import('./lib/express/batch-router').createBatchRouter>[0]} opts
 */
function createBatchRouter(opts) {
  return require('./lib/express/batch-router').createBatchRouter(opts); // loaded on use, like the index's
}

module.exports = {
  createRouter,
  createBatchRouter,
  health,
  procMemory,
  errorResponse,
  HttpError,
  STATUS_BY_CODE,
  optionsFromFields,
  FIELD_PARSERS,
  ACCEPTED_TYPES,
};
