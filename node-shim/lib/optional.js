'use strict';

/**
 * The one way to load an optional peer dependency (package.json peerDependenciesMeta): bullmq for the
 * queue, fflate for the batch router's zip files, express and multer for the routers. npm does not install
 * an optional peer, so the pool alone pulls none of them; the feature that needs one loads it on first use
 * and, when it is missing, says which npm command adds it (README.md, Decisions).
 *
 * @module pyworker/optional
 */

const path = require('node:path');
const { peerDependencies } = require('../package.json');

/** @typedef {'bullmq'|'fflate'|'express'|'multer'} Peer */

/**
 * Where `name` resolves from here, or an Error naming the feature and the command that installs the range
 * this package was tested with (its code is Node's own MODULE_NOT_FOUND, the original error its cause).
 * @param {Peer} name
 * @param {string} feature what needs it, for the message
 * @returns {string}
 */
function resolvePeer(name, feature) {
  try {
    return require.resolve(name);
  } catch (err) {
    const missing = new Error(
      `${feature} needs the npm package ${name}, an optional peer dependency of pyworker-cutout that is not installed; ` +
        `in your app's folder run: npm install "${name}@${peerDependencies[name]}"`,
      { cause: err },
    );
    /** @type {any} */ (missing).code = 'MODULE_NOT_FOUND';
    throw missing;
  }
}

/**
 * `require(name)` of an optional peer, or the Error of resolvePeer. A failure inside the package once
 * found is its own, rethrown as is.
 * @param {Peer} name
 * @param {string} feature
 * @returns {any}
 */
function requirePeer(name, feature) {
  return require(resolvePeer(name, feature));
}

/**
 * A dependency of a peer, the very copy the peer loads (not one hoisting happens to put beside us): ioredis
 * is bullmq's, and BullMQ tells its connections apart with instanceof.
 * @param {string} name
 * @param {'bullmq'} peer
 * @param {string} feature
 * @returns {any}
 */
function requireFromPeer(name, peer, feature) {
  const from = path.dirname(resolvePeer(peer, feature));
  return require(require.resolve(name, { paths: [from] }));
}

module.exports = { requirePeer, requireFromPeer };
