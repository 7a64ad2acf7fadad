'use strict';

// What the integration tests share: a counts-format client model that applies what a
// server pushes (state, then diffs with consecutive seqs) and waits on what it holds, and
// child servers that print "listening <port>".

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check()` until it returns true; fails with `describe()` after `timeoutMs`. */
async function waitFor(check, describe, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out: ${describe()}`);
    await sleep(10);
  }
}

/** Counts held by a client from a presence_state and the presence_diffs after it. */
class CountsView {
  constructor(name) {
    this.name = name;
    this.counts = null;
    this.seq = null;
    this.states = 0;
    this.diffs = 0;
  }

  state({ seq, payload }) {
    this.counts = { viewers: payload.viewers.count, users: payload.users.count };
    this.seq = seq;
    this.states += 1;
  }

  diff({ seq, payload }) {
    assert.ok(this.counts, `${this.name}: a diff before the state`);
    // seq 1 again: the topic emptied and came back; it applies to nothing.
    if (seq === 1 && this.seq !== 0) this.counts = { viewers: 0, users: 0 };
    else assert.equal(seq, this.seq + 1, `${this.name}: diff seq ${seq} after ${this.seq}`);
    this.seq = seq;
    this.diffs += 1;
    for (const g of ['viewers', 'users']) {
      this.counts[g] += (payload.joins[g]?.count ?? 0) - (payload.leaves[g]?.count ?? 0);
    }
  }

  async expect(users, viewers) {
    await waitFor(
      () => this.counts && this.counts.users === users && this.counts.viewers === viewers,
      () => `${this.name} holds ${JSON.stringify(this.counts)}, expected ${users} users, ${viewers} viewers`
    );
  }
}

/** Spawns `node script` with `env`; resolves {child, port, output(), stop()} once it prints "listening <port>". */
function startChild(script, env = {}, args = []) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'fixtures', script), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not start in 20 s:\n${output}`));
    }, 20000);
    const onData = (d) => {
      output += d;
      const m = /listening (\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        const stop = async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
          const code = await exited;
          clearTimeout(kill);
          return code;
        };
        resolve({ child, port: Number(m[1]), output: () => output, stop, exited });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (output += d));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}:\n${output}`));
    });
  });
}

module.exports = { CountsView, sleep, startChild, waitFor };
