'use strict';

/**
 * One pyworker child process: spawn, wait for `ready`, send one request at a
 * time, read replies, stop. No policy here (retries, recycling, timeouts are
 * the pool's); this module only reports precisely what happened, as facts the
 * pool's one state per worker (lib/slot.js) follows:
 *
 *   `ready` (promise and event)  it said `ready`: it serves
 *   'retiring' (stats)           a reply said `retiring: true`: it will exit 75 by itself
 *   'stopping' (reason)          it left service: stop(), kill(), a `fatal` frame, a protocol error
 *   'exit' (ExitInfo)            the process is gone and its output read
 *
 * `state` is the process's own lifecycle (which frames to expect, whether a request may be written).
 *
 * @module pyworker/worker
 */

const { spawn } = require('node:child_process');
const { EventEmitter } = require('node:events');
const { FrameDecoder, encodeFrame } = require('./framing');
const { EXIT, WorkerError } = require('./errors');
const { protocol: PROTOCOL } = require('./contract.json');
const { version: PACKAGE_VERSION } = require('../package.json');
const { parseWorkerLine } = require('./logger');

const STDERR_TAIL_LINES = 20;
/** After stdout ends without an exit, wait this long before killing the process. */
const STDOUT_END_GRACE_MS = 250;
/** After the process exits, wait this long for stdout to end before settling. */
const EXIT_DRAIN_MS = 1000;

let nextSerial = 1;

/**
 * @typedef {object} WorkerOptions
 * @property {string} python
 * @property {string[]} args full argument list after the interpreter (`-m pyworker ...`)
 * @property {NodeJS.ProcessEnv} env
 * @property {string|undefined} cwd
 * @property {number} startTimeoutMs
 * @property {number} maxReplyFrameBytes
 * @property {(entry: import('./logger').LogEntry) => void} log
 */

/**
 * @typedef {object} ExitInfo
 * @property {number|null} code
 * @property {string|null} signal
 * @property {string|null} reason why this client stopped it or saw it fail:
 *   'shutdown' | 'killed' | 'timeout' | 'unresponsive' | 'frozen' | 'aborted' | 'stdout_closed' | 'protocol_error' |
 *   'protocol_mismatch' | 'start_timeout' | 'spawn_error' | null
 * @property {boolean} wasReady
 */

class Worker extends EventEmitter {
  /** @param {WorkerOptions} opts */
  constructor(opts) {
    super();
    this.opts = opts;
    /** client-side serial number, stable even before the pid is known */
    this.serial = nextSerial++;
    /** @type {number|undefined} */
    this.pid = undefined;
    /** @type {'new'|'starting'|'ready'|'stopping'|'exited'} the process's lifecycle; 'stopping' is said once */
    this.state = 'new';
    /** @type {Record<string, any>|null} the `ready` frame */
    this.info = null;
    /** @type {{rss_mb?: number, peak_rss_mb?: number, jobs?: number}|null} stats of the last reply */
    this.lastStats = null;
    /** remove requests answered by this worker (ok or not) */
    this.jobs = 0;
    /** the worker said `retiring: true`; it will exit 75 */
    this.retiring = false;
    /** @type {WorkerError|null} why it could not start */
    this.startError = null;
    /** @type {ExitInfo|null} */
    this.exitInfo = null;
    this.startedAt = Date.now();
    /** @type {number|null} */
    this.readyAt = null;
    /** @type {{id: number, op: string, resolve: (r: any) => void, reject: (e: Error) => void}|null} */
    this.pending = null;
    /** @type {{id: number, resolve: (r: any) => void, reject: (e: Error) => void}|null} the urgent ping in flight */
    this.pendingPing = null;
    /** @type {string[]} */
    this.stderrTail = [];
    /** @type {string|null} */
    this._stopReason = null;
    /** @type {Error|null} */
    this._protocolError = null;
    this._stderrBuf = '';
    this._exited = false;
    this._stdoutEnded = false;
    this._settled = false;
    /** @type {NodeJS.Timeout|null} */
    this._startTimer = null;
    /** @type {NodeJS.Timeout|null} */
    this._killTimer = null;
    /** @type {NodeJS.Timeout|null} */
    this._drainTimer = null;
    /** @type {NodeJS.Timeout|null} */
    this._stdoutEndTimer = null;
    this._ref = true;
    /** @type {import('node:child_process').ChildProcessWithoutNullStreams|null} */
    this.child = null;

    /** @type {Promise<ExitInfo>} resolves once the process is gone and its output read */
    this.exited = new Promise((resolve) => {
      this._resolveExited = resolve;
    });
    /** @type {Promise<Record<string, any>>} resolves with the ready frame, rejects with a start_failed WorkerError */
    this.ready = new Promise((resolve, reject) => {
      this._resolveReady = resolve;
      this._rejectReady = reject;
    });
    // Callers that never await `ready` must not get an unhandled rejection.
    this.ready.catch(() => {});
  }

  /** "worker pid N" (or "worker" before a pid is known), for messages. */
  get label() {
    return this.pid === undefined ? 'worker' : `worker pid ${this.pid}`;
  }

  /** Why this client stopped the process or saw it fail ('shutdown', 'timeout', ...), null if it did not. */
  get stopReason() {
    return this._stopReason;
  }

  /** True once `ready` arrived and until the process stops. */
  get isReady() {
    return this.state === 'ready';
  }

  /** True while a request is in flight. */
  get busy() {
    return this.pending !== null;
  }

  /** @param {string} event @param {Record<string, unknown>} [fields] @param {'debug'|'info'|'warn'|'error'} [level] */
  _log(event, fields = {}, level = 'debug') {
    this.opts.log({ level, event, source: 'client', pid: this.pid, ...fields });
  }

  /** Spawn the process. Returns `this.ready`. */
  start() {
    if (this.state !== 'new') return this.ready;
    this.state = 'starting';
    const { python, args, env, cwd } = this.opts;
    let child;
    try {
      child = spawn(python, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    } catch (err) {
      // Synchronous spawn failures (e.g. a cwd that is not a directory on some platforms).
      this._failStart(
        new WorkerError(`could not start the worker (${python}): ${/** @type {Error} */ (err).message}`, {
          code: 'start_failed',
          cause: err,
        }),
      );
      this._stopReason = 'spawn_error';
      queueMicrotask(() => this._settle(null, null));
      return this.ready;
    }
    this.child = child;
    this.pid = child.pid;
    this._log('spawn', { python, args, cwd });

    const decoder = new FrameDecoder({
      maxFrameBytes: this.opts.maxReplyFrameBytes,
      onMessage: (msg) => this._onMessage(msg),
      onError: (err) => this._onProtocolError(err.message, err),
    });
    child.stdout.on('data', (chunk) => decoder.push(chunk));
    child.stdout.on('end', () => this._onStdoutEnd());
    child.stdout.on('close', () => this._onStdoutEnd());
    child.stdout.on('error', () => {});
    child.stdin.on('error', () => {
      /* EPIPE when the worker is gone: the exit handler reports it */
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text) => this._onStderr(text));
    child.stderr.on('error', () => {});
    child.on('error', (err) => {
      // Spawn failure (ENOENT, EACCES): no 'exit' follows on every platform.
      if (this.pid === undefined || /** @type {NodeJS.ErrnoException} */ (err).syscall?.startsWith('spawn')) {
        this._stopReason = this._stopReason || 'spawn_error';
        this._failStart(
          new WorkerError(`could not start the worker: ${err.message} (python option: ${python})`, {
            code: 'start_failed',
            cause: err,
          }),
        );
        this._exited = true;
        this._stdoutEnded = true;
        this._settle(null, null);
      }
    });
    child.on('exit', (code, signal) => this._onExit(code, signal));

    this._startTimer = setTimeout(() => {
      if (this.state !== 'starting') return;
      this._failStart(
        new WorkerError(
          `${this.label} did not send "ready" within ${this.opts.startTimeoutMs} ms (startTimeoutMs); ` +
            'it was killed' + this._tailHint(),
          { code: 'start_failed', workerPid: this.pid ?? null },
        ),
      );
      this.kill('SIGKILL', 'start_timeout');
    }, this.opts.startTimeoutMs);
    if (!this._ref) this._startTimer.unref();
    this.setRef(this._ref);
    return this.ready;
  }

  /**
   * Keep (true) or stop keeping (false) the Node event loop alive for this
   * child. An idle pool created with `unref` lets the process exit.
   * @param {boolean} ref
   */
  setRef(ref) {
    this._ref = ref;
    const c = this.child;
    if (!c) return;
    const m = ref ? 'ref' : 'unref';
    c[m]();
    // Pipes to a child are sockets: they can be (un)referenced like the child.
    for (const s of /** @type {import('node:net').Socket[]} */ ([c.stdin, c.stdout, c.stderr])) if (s && typeof s[m] === 'function') s[m]();
    if (this._startTimer) this._startTimer[m]();
  }

  /**
   * Send one request and wait for its reply. The caller sends one at a time.
   * Rejects with a retriable WorkerError if the worker dies, closes stdout or
   * breaks the protocol before replying.
   *
   * @param {Record<string, unknown> & {id: number, op: string}} message
   * @returns {Promise<Record<string, any>>}
   */
  request(message) {
    if (this.state !== 'ready') {
      return Promise.reject(
        new WorkerError(`${this.label} is not ready (state ${this.state})`, {
          code: 'worker_crashed',
          workerPid: this.pid ?? null,
          retriable: true,
        }),
      );
    }
    if (this.pending) return Promise.reject(new Error('pyworker internal error: a request is already in flight on this worker'));
    if (this.retiring) {
      return Promise.reject(
        new WorkerError(`${this.label} is retiring`, { code: 'worker_crashed', workerPid: this.pid ?? null, retriable: true }),
      );
    }
    return new Promise((resolve, reject) => {
      this.pending = { id: message.id, op: message.op, resolve, reject };
      let frame;
      try {
        frame = encodeFrame(message);
      } catch (err) {
        this.pending = null;
        reject(err);
        return;
      }
      const stdin = /** @type {import('node:child_process').ChildProcessWithoutNullStreams} */ (this.child).stdin;
      stdin.cork();
      for (const part of frame) stdin.write(part);
      process.nextTick(() => stdin.uncork());
    });
  }

  /**
   * Send an urgent ping (docs/protocol.md#ping): answered at once even while a request runs, by the
   * worker's stdin thread. Resolves with the pong; rejects if the worker dies first. One at a time.
   *
   * @param {number} id
   * @returns {Promise<Record<string, any>>}
   */
  ping(id) {
    if (this.state !== 'ready') return Promise.reject(new Error(`${this.label} is not ready (state ${this.state})`));
    if (this.pendingPing) return Promise.reject(new Error('pyworker internal error: a ping is already in flight on this worker'));
    return new Promise((resolve, reject) => {
      this.pendingPing = { id, resolve, reject };
      const stdin = /** @type {import('node:child_process').ChildProcessWithoutNullStreams} */ (this.child).stdin;
      for (const part of encodeFrame({ id, op: 'ping', urgent: true })) stdin.write(part);
    });
  }

  /**
   * Stop the worker politely: write `shutdown`, close stdin, and SIGKILL it if
   * it has not exited after `graceMs`. Safe to call in any state.
   *
   * @param {{graceMs?: number, id?: number}} [opts]
   * @returns {Promise<ExitInfo>}
   */
  stop(opts = {}) {
    const graceMs = opts.graceMs ?? 10_000;
    if (this._exited || this.state === 'exited') return this.exited;
    if (this.state === 'new') {
      this.state = 'exited';
      this._settle(null, null);
      return this.exited;
    }
    if (this.state === 'stopping') return this.exited;
    const wasStarting = this.state === 'starting';
    this._stopReason = this._stopReason || 'shutdown';
    this._toStopping();
    if (wasStarting) {
      this._failStart(new WorkerError(`${this.label} was stopped before it was ready`, { code: 'start_failed', workerPid: this.pid ?? null }));
    }
    const stdin = this.child && this.child.stdin;
    if (stdin && !stdin.destroyed && stdin.writable) {
      try {
        if (!this.pending && !this.retiring && !wasStarting) {
          const [h, p] = encodeFrame({ id: opts.id ?? 0, op: 'shutdown' }); // small: one payload part
          stdin.write(h);
          stdin.write(p);
        }
        stdin.end();
      } catch {
        /* ignore */
      }
    }
    // Still loading: SIGTERM makes an idle worker exit at once (protocol: Stop).
    if (wasStarting && this.child && !this._exited) {
      try {
        this.child.kill('SIGTERM');
      } catch {
        /* gone */
      }
    }
    this._armKill(graceMs);
    return this.exited;
  }

  /** @param {number} ms */
  _armKill(ms) {
    if (this._killTimer || this._exited) return;
    this._killTimer = setTimeout(() => {
      this._log('stop_timeout', { graceMs: ms }, 'warn');
      this.kill('SIGKILL', this._stopReason || 'killed');
    }, ms);
    this._killTimer.unref();
  }

  /**
   * Kill the process now.
   * @param {NodeJS.Signals} [signal]
   * @param {string} [reason] recorded in the exit info
   */
  kill(signal = 'SIGKILL', reason = 'killed') {
    if (!this._stopReason || this._stopReason === 'shutdown') this._stopReason = reason;
    if (this.state === 'new') this.state = 'exited';
    else this._toStopping();
    if (this.child && !this._exited) {
      try {
        this.child.kill(signal);
      } catch {
        /* already gone */
      }
    } else if (!this.child) {
      this._settle(null, null);
    }
  }

  /** @param {string} text */
  _onStderr(text) {
    this._stderrBuf += text;
    let i;
    while ((i = this._stderrBuf.indexOf('\n')) >= 0) {
      const line = this._stderrBuf.slice(0, i).replace(/\r$/, '');
      this._stderrBuf = this._stderrBuf.slice(i + 1);
      if (line.trim() !== '') this._stderrLine(line);
    }
    if (this._stderrBuf.length > 64 * 1024) {
      this._stderrLine(this._stderrBuf);
      this._stderrBuf = '';
    }
  }

  /** @param {string} line */
  _stderrLine(line) {
    this.stderrTail.push(line.length > 2000 ? `${line.slice(0, 2000)}...` : line);
    if (this.stderrTail.length > STDERR_TAIL_LINES) this.stderrTail.shift();
    this.opts.log(parseWorkerLine(line, this.pid));
  }

  _tailHint() {
    const lines = this.stderrTail.slice(-5);
    if (!lines.length) return '';
    const msgs = lines.map((l) => {
      try {
        const o = JSON.parse(l);
        return o.message || o.error || o.event || l;
      } catch {
        return l;
      }
    });
    return `; last stderr: ${msgs.join(' | ')}`;
  }

  /** @param {Record<string, any>} msg */
  _onMessage(msg) {
    if (this._protocolError) return;
    if (this.state === 'starting') {
      if (msg.op === 'ready' && msg.protocol !== PROTOCOL) {
        // Another protocol: its replies may not have the shapes index.d.ts promises (docs/protocol.md#versions).
        // Not a crash: every restart would say the same, so the start fails and the pool backs off.
        this._failStart(
          new WorkerError(
            `${this.label} (pyworker ${msg.version}) speaks protocol ${JSON.stringify(msg.protocol)}; pyworker-cutout ` +
              `${PACKAGE_VERSION} speaks protocol ${PROTOCOL}: install pyworker ${PACKAGE_VERSION} into ${this.opts.python}'s environment`,
            { code: 'start_failed', workerPid: this.pid ?? null },
          ),
        );
        this.kill('SIGTERM', 'protocol_mismatch');
        return;
      }
      if (msg.op === 'ready') {
        this.state = 'ready';
        this.readyAt = Date.now();
        this.info = msg;
        if (typeof msg.pid === 'number' && this.pid === undefined) this.pid = msg.pid;
        if (typeof msg.rss_mb === 'number') this.lastStats = { rss_mb: msg.rss_mb, peak_rss_mb: msg.rss_mb, jobs: 0 };
        if (this._startTimer) clearTimeout(this._startTimer);
        this._startTimer = null;
        this._log('ready', { model: msg.model, threads: msg.threads, version: msg.version, startMs: this.readyAt - this.startedAt });
        this._resolveReady(msg);
        this.emit('ready', msg);
        return;
      }
      if (msg.op === 'fatal') {
        const e = msg.error || {};
        this._failStart(
          new WorkerError(String(e.message || 'the worker could not start'), {
            code: typeof e.code === 'string' ? e.code : 'start_failed',
            workerPid: this.pid ?? null,
          }),
        );
        this._stopReason = this._stopReason || 'fatal';
        this._toStopping();
        // It exits 78 by itself; make sure it does.
        this._armKill(5_000);
        return;
      }
      this._onProtocolError(`expected a "ready" or "fatal" frame first, got ${JSON.stringify(msg.op ?? Object.keys(msg))}`);
      return;
    }
    const ping = this.pendingPing;
    if (ping && msg.id === ping.id && msg.op === 'pong') {
      // An urgent ping's pong may come before the reply of the request in flight.
      this.pendingPing = null;
      if (msg.stats && typeof msg.stats === 'object') this.lastStats = msg.stats;
      ping.resolve(msg);
      return;
    }
    const p = this.pending;
    if (!p) {
      if (this.state === 'stopping') return; // the shutdown reply, or a late frame from a worker being stopped
      this._onProtocolError(`unexpected frame with no request in flight (id ${JSON.stringify(msg.id)})`);
      return;
    }
    if (msg.id !== p.id && msg.id !== null) {
      this._onProtocolError(`reply id ${JSON.stringify(msg.id)} does not match the request in flight (id ${p.id})`);
      return;
    }
    if (typeof msg.ok !== 'boolean') {
      this._onProtocolError(`reply to id ${p.id} has no boolean "ok"`);
      return;
    }
    this.pending = null;
    if (msg.stats && typeof msg.stats === 'object') this.lastStats = msg.stats;
    if (p.op === 'remove') this.jobs += 1;
    if (msg.retiring === true) {
      this.retiring = true;
      this._log('retiring', { rss_mb: msg.stats && msg.stats.rss_mb });
      this.emit('retiring', msg.stats || {}); // before the reply settles: its owner recycles it first
    }
    p.resolve(msg);
  }

  /** Out of service from now on (stopped, killed, fatal): said once, with the reason known so far. */
  _toStopping() {
    if (this.state === 'stopping' || this.state === 'exited') return;
    this.state = 'stopping';
    this.emit('stopping', this._stopReason);
  }

  /** @param {string} what @param {Error} [cause] */
  _onProtocolError(what, cause) {
    if (this._protocolError || this._exited) return;
    const err = new WorkerError(`${this.label} broke the protocol: ${what}; it was killed`, {
      code: 'protocol_error',
      workerPid: this.pid ?? null,
      retriable: true,
      cause,
    });
    this._protocolError = err;
    this._log('protocol_error', { message: what }, 'error');
    if (this.state === 'starting') {
      this._failStart(new WorkerError(err.message, { code: 'start_failed', workerPid: this.pid ?? null, cause }));
    }
    this._rejectPending(err);
    this.kill('SIGKILL', 'protocol_error');
  }

  _onStdoutEnd() {
    if (this._stdoutEnded) return;
    this._stdoutEnded = true;
    if (this._exited) {
      this._settle(this.exitInfo?.code ?? null, /** @type {NodeJS.Signals|null} */ (this.exitInfo?.signal ?? null));
      return;
    }
    // Normally the process is exiting and 'exit' follows at once. If it does
    // not, it closed stdout and lives on: it can never reply again.
    this._stdoutEndTimer = setTimeout(() => {
      if (this._exited) return;
      const err = new WorkerError(`${this.label} closed its stdout and kept running; it was killed`, {
        code: 'protocol_error',
        workerPid: this.pid ?? null,
        retriable: true,
      });
      this._log('stdout_closed', {}, 'error');
      if (this.state === 'starting') this._failStart(new WorkerError(err.message, { code: 'start_failed', workerPid: this.pid ?? null }));
      this._rejectPending(err);
      this.kill('SIGKILL', 'stdout_closed');
    }, this.pending || this.state === 'starting' ? STDOUT_END_GRACE_MS : STDOUT_END_GRACE_MS * 4);
    this._stdoutEndTimer.unref();
  }

  /** @param {number|null} code @param {NodeJS.Signals|null} signal */
  _onExit(code, signal) {
    this._exited = true;
    this.exitInfo = { code, signal, reason: this._stopReason, wasReady: this.readyAt !== null };
    if (this._stdoutEndTimer) clearTimeout(this._stdoutEndTimer);
    if (this._stdoutEnded) {
      this._settle(code, signal);
    } else {
      // Let the last reply (e.g. the one with retiring: true) be read first.
      this._drainTimer = setTimeout(() => this._settle(code, signal), EXIT_DRAIN_MS);
      this._drainTimer.unref();
    }
  }

  /** @param {WorkerError} err */
  _failStart(err) {
    if (this.startError || this.readyAt !== null) return;
    this.startError = err;
    if (this._startTimer) clearTimeout(this._startTimer);
    this._startTimer = null;
    this._rejectReady(err);
  }

  /** @param {Error} err */
  _rejectPending(err) {
    const ping = this.pendingPing;
    this.pendingPing = null;
    if (ping) ping.reject(err);
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    p.reject(err);
  }

  /** @param {number|null} code @param {NodeJS.Signals|null} signal */
  _settle(code, signal) {
    if (this._settled) return;
    this._settled = true;
    for (const t of [this._startTimer, this._killTimer, this._drainTimer, this._stdoutEndTimer]) if (t) clearTimeout(t);
    if (this._stderrBuf.trim() !== '') this._stderrLine(this._stderrBuf);
    this._stderrBuf = '';
    const reason = this._stopReason;
    const info = { code, signal, reason, wasReady: this.readyAt !== null };
    this.exitInfo = info;
    this.state = 'exited';
    const how = signal ? `was killed by ${signal}` : code === null ? 'could not run' : `exited with code ${code}`;
    if (this.readyAt === null) {
      let msg;
      if (code === EXIT.config) msg = `${this.label} could not start (exit ${code})`;
      else if (code === EXIT.usage) msg = `${this.label} rejected its command line (exit ${code}): check the args option`;
      else msg = `${this.label} ${how} before it was ready`;
      this._failStart(new WorkerError(msg + this._tailHint(), { code: 'start_failed', workerPid: this.pid ?? null, exitCode: code, signal }));
    }
    const why =
      reason === 'timeout'
        ? ' (killed after the job timeout)'
        : reason === 'stdout_closed'
          ? ' (it had closed its stdout)'
          : reason === 'frozen'
            ? ' (it was stopped, e.g. by SIGSTOP, and answered nothing: killed; the request had not run)'
            : reason === 'unresponsive'
              ? ' (it stopped answering: no pong to a ping within pingTimeoutMs, so it could not run at all, e.g. stopped or stuck holding the GIL; it was killed and replaced)'
              : reason === 'aborted'
                ? ' (its caller aborted the request; it was killed and replaced)'
                : '';
    this._rejectPending(
      this._protocolError ||
        new WorkerError(`${this.label} ${how} while handling the request${why}${this._tailHint()}`, {
          code: 'worker_crashed',
          workerPid: this.pid ?? null,
          retriable: true,
          exitCode: code,
          signal,
        }),
    );
    this._log('exit', { code, signal, reason }, code === EXIT.ok || code === EXIT.retired || reason ? 'debug' : 'warn');
    this.emit('exit', info);
    this._resolveExited(info);
  }
}

module.exports = { Worker };
