'use strict';

/**
 * The optional peer dependencies (package.json peerDependenciesMeta): bullmq for the queue, fflate for the
 * batch router's zip files. npm does not install an optional peer, so the pool alone pulls neither; the
 * feature that needs one loads it on first use and, when it is missing, says which npm command adds it
 * (README.md, Decisions).
 *
 * @module pyworker/optional
 */

const { peerDependencies } = require('../package.json');

/**
 * `require(name)`, or an Error naming the feature and the command that installs the range this package
 * was tested with. Any other failure inside the package is rethrown as is.
 * @param {'bullmq'|'fflate'} name
 * @param {string} feature what needs it, for the message
 * @returns {any}
 */
function requirePeer(name, feature) {
  try {
    return require(name);
  } catch (err) {
    const e = /** @type {NodeJS.ErrnoException} */ (err);
    // Only the package itself being absent; not a module missing deep inside it.
    if (e.code !== 'MODULE_NOT_FOUND' || !String(e.message).includes(`'${name}'`)) throw err;
    const range = peerDependencies[name];
    const missing = new Error(
      `${feature} needs the npm package ${name}, an optional peer dependency of pyworker-node that is not installed; ` +
        `in your app's folder run: npm install "${name}@${range}"`,
      { cause: err },
    );
    /** @type {any} */ (missing).code = 'MODULE_NOT_FOUND';
    throw missing;
  }
}

module.exports = { requirePeer };
