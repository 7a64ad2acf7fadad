// The demo in a real browser: Debian's Chromium driven by playwright-core, against each
// server (Python and Node), each started on a free loopback port and stopped afterwards.
//
// On video 1: two anonymous pages, alice in two tabs of one browser context, bob; on
// video 2: an anonymous page and carol. Every video-1 page must show "2 users · 2 viewers";
// closing one of alice's tabs changes nothing; closing the other leaves 1 user; closing an
// anonymous page leaves 1 viewer; the video-2 pages show "1 user · 1 viewer" throughout.
// Then the page's own controls: bob moves to video 2 with the switcher, and the remaining
// anonymous page signs in with the login form.
//
// Screenshots go to target/browser-results/ (BROWSER_RESULTS overrides).
// Needs: the built page (examples/web/dist), /usr/bin/chromium (CHROMIUM overrides), the
// Python venv with presence_engine and websockets (PRESENCE_DEMO_PYTHON overrides
// target/web/venv/bin/python). `make test-browser` provides all three.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const ROOT = path.resolve(WEB, '../..')
const RESULTS = process.env.BROWSER_RESULTS || path.join(ROOT, 'target/browser-results')
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'
const PYTHON = process.env.PRESENCE_DEMO_PYTHON || path.join(ROOT, 'target/web/venv/bin/python')
const WINDOW_MS = 100

const SERVERS = {
  python: [PYTHON, [path.join(WEB, 'server/python/server.py')]],
  node: [process.execPath, [path.join(WEB, 'server/node/server.js')]],
}

/** Starts a demo server on a free loopback port; resolves once it prints its address. */
function startServer(kind) {
  const [command, args] = SERVERS[kind]
  const proc = spawn(command, [...args, '--host', '127.0.0.1', '--port', '0', '--window-ms', String(WINDOW_MS)], {
    cwd: WEB,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`the ${kind} server did not start in 20 s:\n${output}`)), 20000)
    const fail = (err) => {
      clearTimeout(timer)
      proc.kill('SIGKILL')
      reject(err)
    }
    const onData = (chunk) => {
      output += chunk
      const m = output.match(/listening on (http:\/\/127\.0\.0\.1:\d+\/)/)
      if (m) {
        clearTimeout(timer)
        resolve({ proc, url: m[1], output: () => output })
      }
    }
    proc.stdout.on('data', onData)
    proc.stderr.on('data', (chunk) => {
      output += chunk
    })
    proc.on('error', fail)
    proc.on('exit', (code) => fail(new Error(`the ${kind} server exited with ${code}:\n${output}`)))
  })
}

async function stopServer(server) {
  if (server.proc.exitCode !== null) return server.proc.exitCode
  const exited = new Promise((resolve) => server.proc.once('exit', (code, signal) => resolve(code ?? signal)))
  server.proc.kill('SIGTERM')
  const timer = setTimeout(() => server.proc.kill('SIGKILL'), 5000)
  const code = await exited
  clearTimeout(timer)
  return code
}

const presenceText = (page) => page.locator('[data-testid=presence]').textContent()

/** Waits until the page shows `expected`; fails with what it shows instead. */
async function expectPresence(page, expected, name) {
  try {
    await page.waitForFunction(
      (text) => document.querySelector('[data-testid=presence]')?.textContent === text,
      expected,
      { timeout: 5000, polling: 25 },
    )
  } catch {
    assert.fail(`${name} shows "${await presenceText(page).catch(() => '?')}", expected "${expected}"`)
  }
}

/** Waits until the server's engine has `connections` in `topic` and nothing left to poll,
 * then one more window, so that what the pages show next is the settled state. */
async function settle(server, topic, connections) {
  const deadline = Date.now() + 5000
  for (;;) {
    const res = await fetch(new URL(`api/presence?topic=${encodeURIComponent(topic)}`, server.url))
    const body = await res.json()
    if (body.connections === connections && body.pending === 0) break
    if (Date.now() > deadline) assert.fail(`${topic} on the server: ${JSON.stringify(body)}, expected ${connections} connections`)
    await new Promise((r) => setTimeout(r, 20))
  }
  await new Promise((r) => setTimeout(r, 2 * WINDOW_MS))
}

let browser
const started = performance.now()

before(async () => {
  fs.mkdirSync(RESULTS, { recursive: true })
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // playwright-core gives every launch a fresh temporary user-data-dir of its own.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
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

    const open = async (context, query, name) => {
      const page = await context.newPage()
      page.on('pageerror', (err) => errors.push(`${name}: ${err.message}`))
      page.on('console', (msg) => {
        if (msg.type() === 'error') errors.push(`${name}: console: ${msg.text()}`)
      })
      await page.goto(new URL(query, server.url).toString())
      return page
    }

    test('counts users once per name and viewers once per tab, live, per video', async (t) => {
      const t0 = performance.now()
      let last = t0
      const steps = []
      const mark = (label) => {
        const now = performance.now()
        steps.push(`${label} ${((now - last) / 1000).toFixed(2)}s`)
        last = now
      }
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
      const expectAll = async (pages, text) => {
        for (const [name, page] of Object.entries(pages)) await expectPresence(page, text, name)
      }

      await settle(server, 'video:1', 5)
      await expectAll(v1, '2 users · 2 viewers')
      await expectAll(v2, '1 user · 1 viewer')
      for (const [name, page] of Object.entries({ ...v1, ...v2 })) {
        assert.equal(await page.locator('[data-testid=status]').textContent(), 'Live', `${name} status`)
      }
      await v1.alice1.screenshot({ path: path.join(RESULTS, `${kind}-video-1-alice.png`) })
      await v2.anon.screenshot({ path: path.join(RESULTS, `${kind}-video-2-anonymous.png`) })
      mark('all live, screenshots')

      // One of alice's tabs closes: she is still there.
      await v1.alice1.close()
      delete v1.alice1
      await settle(server, 'video:1', 4)
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
      t.diagnostic(`${kind}: ${((performance.now() - t0) / 1000).toFixed(2)} s in the browser (${steps.join(', ')})`)
    })
  })
}
