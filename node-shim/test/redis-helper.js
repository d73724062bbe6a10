'use strict';

// A real redis-server for the queue tests: Debian's package (installed by
// tests/setup/apt-ensure.sh when missing), on a free loopback port, no
// persistence, stopped after the test file.

const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { REPO } = require('./helpers');

/** Installs a Debian package's command when it is missing (a no-op when present). */
function ensureCommand(command, pkg = command) {
  execFileSync('bash', [path.join(REPO, 'tests', 'setup', 'apt-ensure.sh'), `${command}=${pkg}`], { stdio: 'inherit' });
}

/** A port nobody listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

/** Answers PING with PONG? */
function ping(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    s.setTimeout(1000, () => s.destroy());
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      data += d;
      if (data.includes('\r\n')) {
        s.destroy();
        resolve(data.startsWith('+PONG'));
      }
    });
    s.on('error', () => resolve(false));
    s.on('close', () => resolve(data.startsWith('+PONG')));
  });
}

/**
 * Start a redis-server; returns {url, port, pid, stop()}.
 * @param {{maxmemoryMb?: number, port?: number}} [opts] `port`: this one (a restart of a stopped server)
 */
async function startRedis(opts = {}) {
  ensureCommand('redis-server');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pyworker-redis-'));
  for (let tries = 0; ; tries++) {
    const port = opts.port ?? (await freePort());
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'];
    // BullMQ asks for noeviction: an evicted job key would be a lost job.
    args.push('--maxmemory-policy', 'noeviction');
    if (opts.maxmemoryMb) args.push('--maxmemory', `${opts.maxmemoryMb}mb`);
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    const end = Date.now() + 10_000;
    let up = false;
    while (Date.now() < end && proc.exitCode === null) {
      if (await ping(port)) {
        up = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!up) {
      proc.kill('SIGKILL');
      await exited;
      if (tries < 3) continue; // the port was taken meanwhile
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`redis-server did not start on port ${port}: ${stderr}`);
    }
    return {
      port,
      pid: proc.pid,
      url: `redis://127.0.0.1:${port}`,
      async stop() {
        if (proc.exitCode === null) {
          proc.kill('SIGTERM');
          const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(t);
        }
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

module.exports = { startRedis, ensureCommand, freePort };
