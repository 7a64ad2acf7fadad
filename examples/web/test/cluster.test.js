// The cluster demo in a real browser: for each server language, a redis-server of the
// test's own on a free loopback port and two servers of that language in cluster mode
// (nodes a and b, one shared secret, one channel, the engine's built-in Redis link), each
// on a free loopback port; Debian's Chromium opens pages on both.
//
// On video 1: alice and an anonymous page on node a, bob and an anonymous page on node b:
// every page, whichever node serves it, shows "2 users · 2 viewers", and names its node.
// alice opening a tab on b too still counts 2 users (and sends no diff on either node).
// Closing the pages on a updates the pages on b; closing alice's tab on b leaves 1 user.
// carol joins on a, then server a stops: b's pages drop carol at once, and b drops node
// a long before --down-after-ms, which only the departure that the server's stopRedis /
// stop_redis publishes through Redis can explain. An anonymous page on video 2 (on b)
// shows "0 users · 1 viewer" throughout.
//
// Screenshots of a page on each node go to target/browser-results/ (BROWSER_RESULTS
// overrides). Needs what browser.test.js needs, and redis-server (`make test-browser`
// installs it: deps-redis).

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  RESULTS,
  SERVERS,
  expectAll,
  launchBrowser,
  openPage,
  presenceOf,
  settle,
  sleep,
  startRedis,
  startServer,
  stopServer,
  stopwatch,
} from './helpers.js'

const TICK_MS = 50
// Long, so that a node dropped quickly can only have announced its departure.
const DOWN_AFTER_MS = 10000
const SECRET_ENV = 'PRESENCE_DEMO_SECRET'

let browser
const started = performance.now()

before(async () => {
  fs.mkdirSync(RESULTS, { recursive: true })
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  console.log(`cluster browser suite: ${((performance.now() - started) / 1000).toFixed(1)} s`)
})

/** Waits until each server sees `peers` other live nodes. */
async function expectPeers(servers, peers, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs
  for (const server of servers) {
    for (;;) {
      const body = await presenceOf(server, 'video:1')
      if (body.peers === peers) break
      if (Date.now() > deadline) assert.fail(`${server.url} sees ${body.peers} other nodes, expected ${peers}`)
      await sleep(20)
    }
  }
}

for (const kind of Object.keys(SERVERS)) {
  describe(`two ${kind} servers in a cluster over Redis`, () => {
    let redis
    const servers = {}
    const contexts = []
    const errors = []

    before(async () => {
      redis = await startRedis()
      const env = { [SECRET_ENV]: randomBytes(24).toString('base64url') }
      const options = (node) => ({
        env,
        args: [
          '--node', node,
          '--redis', redis.url,
          '--channel', `presence-browser-test-${kind}`,
          '--secret-env', SECRET_ENV,
          '--tick-ms', String(TICK_MS),
          '--down-after-ms', String(DOWN_AFTER_MS),
        ],
      })
      ;[servers.a, servers.b] = await Promise.all([startServer(kind, options('a')), startServer(kind, options('b'))])
    })

    // Every server and the Redis stop before any check: a process left running would keep
    // this test file from ever exiting.
    after(async () => {
      for (const context of contexts) await context.close()
      const stopped = await Promise.all(Object.entries(servers).map(async ([name, server]) => [name, server, await stopServer(server)]))
      await redis?.stop()
      for (const [name, server, code] of stopped) {
        assert.equal(code, 0, `${kind} node ${name} did not stop cleanly (${code}):\n${server.output()}`)
      }
    })

    test('pages on either node show the whole cluster, live', async (t) => {
      const { mark, summary } = stopwatch()
      const { a, b } = servers
      await expectPeers([a, b], 1)
      mark('nodes linked')

      const newContext = async () => {
        const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
        contexts.push(context)
        return context
      }
      const open = (context, server, query, name) => openPage(context, server, query, name, errors)
      const aliceContext = await newContext()
      const [aliceA, anonA, bobB, anonB, v2anonB] = await Promise.all([
        open(aliceContext, a, '?v=1&user=alice', 'alice on a'),
        newContext().then((c) => open(c, a, '?v=1', 'anonymous on a')),
        newContext().then((c) => open(c, b, '?v=1&user=bob', 'bob on b')),
        newContext().then((c) => open(c, b, '?v=1', 'anonymous on b')),
        newContext().then((c) => open(c, b, '?v=2', 'anonymous on b, video 2')),
      ])
      const v1 = { aliceA, anonA, bobB, anonB }
      const v2 = { v2anonB }
      mark('open 5 pages')

      await settle([a, b], 'video:1', 4)
      await expectAll(v1, '2 users · 2 viewers')
      await expectAll(v2, '0 users · 1 viewer')
      for (const [name, page] of Object.entries({ ...v1, ...v2 })) {
        assert.equal(await page.locator('[data-testid=status]').textContent(), 'Live', `${name} status`)
        assert.equal(await page.locator('[data-testid=node]').textContent(), name.endsWith('A') ? 'a' : 'b', `${name} node`)
      }
      await aliceA.screenshot({ path: path.join(RESULTS, `${kind}-cluster-node-a.png`) })
      await bobB.screenshot({ path: path.join(RESULTS, `${kind}-cluster-node-b.png`) })
      mark('all live, screenshots')

      // alice opens a tab on node b too: still 2 users, and neither node sends a diff
      // (a change of connections alone).
      const seqs = [(await presenceOf(a, 'video:1')).seq, (await presenceOf(b, 'video:1')).seq]
      v1.aliceB = await open(aliceContext, b, '?v=1&user=alice', 'alice on b')
      await settle([a, b], 'video:1', 5)
      await expectAll(v1, '2 users · 2 viewers')
      await expectAll(v2, '0 users · 1 viewer')
      assert.deepEqual([(await presenceOf(a, 'video:1')).seq, (await presenceOf(b, 'video:1')).seq], seqs, 'seqs after alice on b')
      mark('alice on both nodes')

      // The pages on node a close: b's pages follow (alice is still on b).
      await Promise.all([v1.aliceA.close(), v1.anonA.close()])
      delete v1.aliceA
      delete v1.anonA
      await settle([a, b], 'video:1', 3)
      await expectAll(v1, '2 users · 1 viewer')
      await expectAll(v2, '0 users · 1 viewer')
      mark("a's pages close")

      // alice's tab on b closes: one user left.
      await v1.aliceB.close()
      delete v1.aliceB
      await settle([a, b], 'video:1', 2)
      await expectAll(v1, '1 user · 1 viewer')
      mark("alice's tab on b closes")

      // carol joins on a; then server a stops. Its departure reaches b through Redis: b
      // drops node a (and carol with it) at once instead of after DOWN_AFTER_MS.
      const carol = await newContext().then((c) => open(c, a, '?v=1&user=carol', 'carol on a'))
      await settle([a, b], 'video:1', 3)
      await expectAll({ ...v1, carol }, '2 users · 1 viewer')
      mark('carol joins on a')
      carol.ignoreErrors = true // her socket closes with the server and reconnects in vain
      const stopAt = performance.now()
      const code = await stopServer(a)
      delete servers.a
      assert.equal(code, 0, `${kind} node a did not stop cleanly (${code}):\n${a.output()}`)
      await expectAll(v1, '1 user · 1 viewer')
      const dropped = performance.now() - stopAt
      assert.ok(dropped < DOWN_AFTER_MS / 3, `b dropped node a after ${Math.round(dropped)} ms`)
      await expectPeers([b], 0, Math.max(0, DOWN_AFTER_MS / 3 - (performance.now() - stopAt)))
      await settle(b, 'video:1', 2)
      await expectAll(v2, '0 users · 1 viewer')
      mark(`node a stops (dropped by b in ${Math.round(dropped)} ms)`)

      assert.deepEqual(errors, [], 'errors in the pages')
      t.diagnostic(`${kind} cluster: ${summary()}`)
    })
  })
}
