// The demo in a real browser: Debian's Chromium driven by playwright-core, against each
// server (Python and Node), each started on a free loopback port and stopped afterwards.
//
// On video 1: two anonymous pages, alice in two tabs of one browser context, bob; on
// video 2: an anonymous page and carol. Every video-1 page must show "2 users · 2 viewers";
// closing one of alice's tabs changes nothing (the server sends no diff at all: in counts
// format a change of connections alone is none); closing the other leaves 1 user; closing
// an anonymous page leaves 1 viewer; the video-2 pages show "1 user · 1 viewer" throughout.
// Then the page's own controls: bob moves to video 2 with the switcher, and the remaining
// anonymous page signs in with the login form.
//
// The cluster (two servers linked through Redis) is cluster.test.js. Screenshots go to
// target/browser-results/ (BROWSER_RESULTS overrides).
// Needs: the built page (examples/web/dist), /usr/bin/chromium (CHROMIUM overrides), the
// Python venv with presence_engine and websockets (PRESENCE_DEMO_PYTHON overrides
// target/web/venv/bin/python). `make test-browser` provides all three.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  RESULTS,
  SERVERS,
  expectAll,
  expectPresence,
  launchBrowser,
  openPage,
  presenceOf,
  settle,
  startServer,
  stopServer,
  stopwatch,
} from './helpers.js'

/** Waits until the page's status badge reads `text`; fails with what it reads instead. */
async function expectStatus(page, text, name) {
  try {
    await page.waitForFunction((t) => document.querySelector('[data-testid=status]')?.textContent === t, text, {
      timeout: 10000,
      polling: 25,
    })
  } catch {
    assert.fail(`${name}: status "${await page.locator('[data-testid=status]').textContent()}", expected "${text}"`)
  }
}

let browser
const started = performance.now()

before(async () => {
  fs.mkdirSync(RESULTS, { recursive: true })
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  console.log(`browser suite: ${((performance.now() - started) / 1000).toFixed(1)} s`)
})

for (const kind of Object.keys(SERVERS)) {
  describe(`the ${kind} server`, () => {
    let server
    const contexts = []
    const errors = []

    before(async () => {
      server = await startServer(kind)
    })

    after(async () => {
      for (const context of contexts) await context.close()
      if (server) {
        const code = await stopServer(server)
        assert.equal(code, 0, `the ${kind} server did not stop cleanly (${code}):\n${server.output()}`)
      }
    })

    const open = (context, query, name) => openPage(context, server, query, name, errors)

    test('counts users once per name and viewers once per tab, live, per video', async (t) => {
      const { mark, summary } = stopwatch()
      const newContext = async () => {
        const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
        contexts.push(context)
        return context
      }
      const aliceContext = await newContext()
      const [anon1, anon2, alice1, alice2, bob, v2anon, carol] = await Promise.all([
        newContext().then((c) => open(c, '?v=1', 'anonymous 1')),
        newContext().then((c) => open(c, '?v=1', 'anonymous 2')),
        open(aliceContext, '?v=1&user=alice', "alice's first tab"),
        open(aliceContext, '?v=1&user=alice', "alice's second tab"),
        newContext().then((c) => open(c, '?v=1&user=bob', 'bob')),
        newContext().then((c) => open(c, '?v=2', 'anonymous on video 2')),
        newContext().then((c) => open(c, '?v=2&user=carol', 'carol on video 2')),
      ])
      const v1 = { anon1, anon2, alice1, alice2, bob }
      const v2 = { anon: v2anon, carol }
      mark('open 7 pages')

      await settle(server, 'video:1', 5)
      await expectAll(v1, '2 users · 2 viewers')
      await expectAll(v2, '1 user · 1 viewer')
      for (const [name, page] of Object.entries({ ...v1, ...v2 })) {
        assert.equal(await page.locator('[data-testid=status]').textContent(), 'Live', `${name} status`)
      }
      await v1.alice1.screenshot({ path: path.join(RESULTS, `${kind}-video-1-alice.png`) })
      await v2.anon.screenshot({ path: path.join(RESULTS, `${kind}-video-2-anonymous.png`) })
      mark('all live, screenshots')

      // One of alice's tabs closes: she is still there, and since the pages show users and
      // viewers only, the server sends them nothing (the topic's seq does not move).
      const { seq } = await presenceOf(server, 'video:1')
      await v1.alice1.close()
      delete v1.alice1
      await settle(server, 'video:1', 4)
      assert.equal((await presenceOf(server, 'video:1')).seq, seq, 'a diff for a change of connections alone')
      await expectAll(v1, '2 users · 2 viewers')
      await expectAll(v2, '1 user · 1 viewer')
      mark('alice closes a tab')

      // Her other tab closes: one user left.
      await v1.alice2.close()
      delete v1.alice2
      await settle(server, 'video:1', 3)
      await expectAll(v1, '1 user · 2 viewers')
      await expectAll(v2, '1 user · 1 viewer')
      mark('alice closes the other')

      // An anonymous page closes: one viewer left.
      await v1.anon1.close()
      delete v1.anon1
      await settle(server, 'video:1', 2)
      await expectAll(v1, '1 user · 1 viewer')
      await expectAll(v2, '1 user · 1 viewer')
      mark('an anonymous page closes')

      // bob moves to video 2 with the switcher.
      await v1.bob.locator('button[data-video="2"]').click()
      await expectPresence(v1.bob, '2 users · 1 viewer', 'bob on video 2')
      assert.match(v1.bob.url(), /[?&]v=2(&|$)/)
      assert.equal(await v1.bob.locator('#video-title').textContent(), 'Privacy by default, in practice')
      await settle(server, 'video:1', 1)
      await expectAll({ anon2: v1.anon2 }, '0 users · 1 viewer')
      await expectAll(v2, '2 users · 1 viewer')
      mark('bob switches video')

      // The last anonymous page of video 1 signs in with the form.
      await v1.anon2.getByLabel('Your name').fill('dave')
      await v1.anon2.getByRole('button', { name: 'Sign in' }).click()
      await expectPresence(v1.anon2, '1 user · 0 viewers', 'dave on video 1')
      assert.equal(await v1.anon2.locator('[data-testid=user]').textContent(), 'dave')
      assert.match(v1.anon2.url(), /[?&]user=dave(&|$)/)
      await v1.anon2.screenshot({ path: path.join(RESULTS, `${kind}-video-1-dave-signed-in.png`) })
      await expectAll(v2, '2 users · 1 viewer')
      mark('dave signs in')

      assert.deepEqual(errors, [], 'errors in the pages')
      t.diagnostic(`${kind}: ${summary()}`)
    })

    test('pages rejoin by themselves after a server restart (phoenix.js)', async () => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
      contexts.push(context)
      const erin = await open(context, '?v=3&user=erin', 'erin')
      const viewer = await open(context, '?v=3', 'viewer')
      await settle(server, 'video:3', 2)
      await expectAll({ erin, viewer }, '1 user · 1 viewer')
      // The server stops (the pages' sockets close with it) and a new one, with a new
      // engine, starts on the same port: the pages reconnect and rejoin, and the new
      // engine counts them again from its own state.
      erin.ignoreErrors = viewer.ignoreErrors = true // the reconnects in vain while it is down
      const { port } = new URL(server.url)
      assert.equal(await stopServer(server), 0, `the ${kind} server did not stop cleanly:\n${server.output()}`)
      await expectStatus(erin, 'Reconnecting…', 'erin while the server is down')
      server = await startServer(kind, { args: ['--port', port] })
      await settle(server, 'video:3', 2)
      await expectAll({ erin, viewer }, '1 user · 1 viewer')
      for (const [name, page] of Object.entries({ erin, viewer })) await expectStatus(page, 'Live', name)
      await viewer.close()
      await settle(server, 'video:3', 1)
      await expectPresence(erin, '1 user · 0 viewers', 'erin after the viewer left')
    })
  })
}
