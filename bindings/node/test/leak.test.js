'use strict';

// Memory stays flat over a million track/poll/untrack cycles.
//
// The bound: RSS may grow by at most 16 MiB between a 100k-cycle warm-up and the end of
// 1M further cycles (both measured after full GCs, in a fresh process). Every poll
// here returns a 300-400 byte JSON buffer; if presence_buf_free were skipped, 1M polls
// would keep at least 300 MB. More generally a leak of 17 bytes or more per cycle,
// native or JS (a retained string, a registry entry), would cross 16 MiB. What is left
// is allocator and V8 heap noise: 0-3 MiB measured on this machine. The negative control
// below runs the same measurement on a loop that really leaks and checks that it does
// cross the bound, so the bound is known to catch what it is meant to catch.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const BOUND = 16 * 1024 * 1024;
const FIXTURE = path.join(__dirname, 'fixtures', 'leak.js');

function run(args, env = {}) {
  const out = execFileSync(process.execPath, ['--expose-gc', FIXTURE, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return JSON.parse(out.trim().split('\n').pop());
}

for (const format of ['counts', 'phoenix']) {
  test(`1M track/poll/untrack cycles keep RSS within 16 MiB (${format})`, () => {
    const r = run(['1000000'], { LEAK_FORMAT: format });
    assert.equal(r.cycles, 1_000_000);
    assert.equal(r.presences, 0);
    assert.ok(r.avgPollBytes > 200, `each poll returned a real payload (${r.avgPollBytes} bytes on average)`);
    assert.ok(r.growth < BOUND, `RSS grew by ${r.growth} bytes (bound ${BOUND})`);
  });
}

test('50k engines created and closed keep RSS within 16 MiB', () => {
  // An engine holds about 14 KB (its shard tables) and a descriptor; 50k unfreed
  // engines would keep about 700 MB (and run out of descriptors first).
  const r = run(['50000', '--engines']);
  assert.ok(r.growth < BOUND, `RSS grew by ${r.growth} bytes (bound ${BOUND})`);
});

test('300k cluster cycles (track, clusterTick, clusterIngest on a peer, untrack) keep RSS within 16 MiB', () => {
  // Each cycle's messages are about 87 bytes: keeping them (or leaking the native copy
  // they were made from) would grow RSS by 26 MB.
  const r = run(['300000', '--cluster']);
  assert.equal(r.cycles, 300_000);
  assert.equal(r.presences, 0);
  assert.ok(r.avgPollBytes > 50, `each cycle moved real messages (${r.avgPollBytes} bytes on average)`);
  assert.ok(r.growth < BOUND, `RSS grew by ${r.growth} bytes (bound ${BOUND})`);
});

test('negative control: polls whose buffers are never freed do cross the bound', () => {
  const r = run(['200000', '--skip-free']);
  assert.ok(r.growth > BOUND, `the leaking loop grew RSS by only ${r.growth} bytes`);
});
