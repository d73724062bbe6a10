'use strict';

/**
 * Request options from multipart text fields, for both routers: the same camelCase names as the
 * pool's request options, parsed from strings; the pool validates the values. A boolean is
 * true/false/1/0, or "on": what an HTML checkbox without a value sends when ticked (an unticked
 * one sends nothing, so there is no "off").
 *
 * @module pyworker-cutout/express/fields
 */

const { HttpError } = require('./http-errors');

const contract = require('../contract.json');

/** @param {string} key snake_case */
const toCamel = (key) => key.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());

/**
 * Each `remove` option of the contract (pyworker/pipeline/options.py) as a text field, by camelCase name.
 * @type {Readonly<Record<string, 'int'|'bool'|'string'>>}
 */
const FIELD_PARSERS = Object.freeze(
  Object.fromEntries(
    contract.options.map((/** @type {{name: string, kind: string}} */ o) => /** @type {[string, 'int'|'bool'|'string']} */ ([toCamel(o.name), o.kind === 'int' || o.kind === 'bool' ? o.kind : 'string'])),
  ),
);

/**
 * @param {Record<string, unknown>} [body] multer's req.body
 * @returns {Record<string, number|boolean|string>}
 */
function optionsFromFields(body = {}) {
  /** @type {Record<string, number|boolean|string>} */
  const options = {};
  for (const [name, kind] of Object.entries(FIELD_PARSERS)) {
    const raw = body[name];
    if (raw === undefined || raw === '') continue;
    if (typeof raw !== 'string') throw new HttpError(400, 'bad_request', `field ${name} must be given once`);
    if (kind === 'int') {
      if (!/^\d+$/.test(raw)) throw new HttpError(400, 'bad_request', `field ${name} must be an integer >= 0, got "${raw}"`);
      options[name] = Number(raw);
    } else if (kind === 'bool') {
      if (!/^(true|false|1|0|on)$/i.test(raw)) throw new HttpError(400, 'bad_request', `field ${name} must be true or false, got "${raw}"`);
      options[name] = /^(true|1|on)$/i.test(raw);
    } else {
      options[name] = raw;
    }
  }
  return options;
}

module.exports = { FIELD_PARSERS, optionsFromFields };
