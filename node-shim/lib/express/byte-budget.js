'use strict';

/**
 * Bytes held at once by all requests of a router together (upload bodies, then the inputs they become),
 * each request's share kept in its own ledger so whatever happens to the request, all it took is given back.
 *
 * @module pyworker-cutout/express/byte-budget
 */

class ByteBudget {
  /** @param {number} total */
  constructor(total) {
    this.total = total;
    this.held = 0;
  }

  /**
   * Take `n` bytes if they fit (a first holder always fits: one request larger than the budget alone must still
   * be answerable by its own limits). @param {number} n @returns {boolean}
   */
  tryTake(n) {
    if (this.held > 0 && this.held + n > this.total) return false;
    this.held += n;
    return true;
  }

  /** A ledger of one request: take/give against this budget; close() gives back what is left. */
  ledger() {
    const budget = this;
    let mine = 0;
    return {
      /** @param {number} n */
      tryTake(n) {
        if (!budget.tryTake(n)) return false;
        mine += n;
        return true;
      },
      /** @param {number} n */
      give(n) {
        const m = Math.min(n, mine);
        mine -= m;
        budget.held -= m;
      },
      get held() {
        return mine;
      },
      close() {
        budget.held -= mine;
        mine = 0;
      },
    };
  }
}

module.exports = { ByteBudget };
