'use strict';

// A redis-server of the test's own, on a free loopback port: 127.0.0.1 only, nothing
// saved to disk. `make test-node` installs redis-server (deps-redis in mk/deps.mk).

const net = require('node:net');
const { spawn } = require('node:child_process');

/** A TCP port that was free a moment ago on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts redis-server and resolves once it accepts connections:
 * {port, url, child, stop()}. stop() ends it and resolves when it has exited.
 */
async function startRedis({ attempts = 3 } = {}) {
  let lastError = null;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = await freePort();
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'ignore', 'pipe'] }
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const spawnError = new Promise((resolve) => child.once('error', resolve));
    let exit = null;
    exited.then((e) => (exit = e));
    let error = null;
    spawnError.then((e) => (error = e));
    const deadline = Date.now() + 10_000;
    while (exit === null && error === null && Date.now() < deadline) {
      if (await canConnect(port)) {
        const stop = async () => {
          if (exit === null) {
            child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
            await exited;
            clearTimeout(timer);
          }
        };
        return { port, url: `redis://127.0.0.1:${port}/`, child, stop, exited };
      }
      await sleep(20);
    }
    if (error && error.code === 'ENOENT') {
      throw new Error('redis-server is not installed (make test-node installs it: deps-redis in mk/deps.mk)');
    }
    child.kill('SIGKILL');
    await Promise.race([exited, spawnError]);
    // Most likely the port was taken between freePort() and the bind: try another.
    lastError = new Error(`redis-server on port ${port} did not start: ${error ? error.message : JSON.stringify(exit)} ${stderr}`);
  }
  throw lastError;
}

module.exports = { startRedis, freePort, canConnect };
