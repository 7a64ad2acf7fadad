// What the browser tests share: the demo servers (started on free loopback ports, stopped
// afterwards), a redis-server of the tests' own, Chromium, and the waits on what a page
// shows and on what a server's engine holds.

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

export const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
export const ROOT = path.resolve(WEB, '../..')
export const RESULTS = process.env.BROWSER_RESULTS || path.join(ROOT, 'target/browser-results')
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'
const PYTHON = process.env.PRESENCE_DEMO_PYTHON || path.join(ROOT, 'target/web/venv/bin/python')
export const WINDOW_MS = 100

export const SERVERS = {
  python: [PYTHON, [path.join(WEB, 'server/python/server.py')]],
  node: [process.execPath, [path.join(WEB, 'server/node/server.js')]],
}

/** Why a server case cannot run yet, or false: both servers serve the page's Phoenix
 * Channels endpoint (/socket/websocket), and a server without it cannot feed the page. */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Starts a demo server on a free loopback port; resolves once it prints its address.
 * `args` are added to its command line (the cluster options), `env` to its environment. */
export function startServer(kind, { args = [], env = {} } = {}) {
  const [command, base] = SERVERS[kind]
  const proc = spawn(command, [...base, '--host', '127.0.0.1', '--port', '0', '--window-ms', String(WINDOW_MS), ...args], {
    cwd: WEB,
    env: { ...process.env, ...env },
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

/** SIGTERM (SIGKILL after 5 s); resolves with the exit code (or the signal). */
export async function stopServer(server) {
  if (server.proc.exitCode !== null) return server.proc.exitCode
  const exited = new Promise((resolve) => server.proc.once('exit', (code, signal) => resolve(code ?? signal)))
  server.proc.kill('SIGTERM')
  const timer = setTimeout(() => server.proc.kill('SIGKILL'), 5000)
  const code = await exited
  clearTimeout(timer)
  return code
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' })
    sock.once('connect', () => {
      sock.destroy()
      resolve(true)
    })
    sock.once('error', () => resolve(false))
  })
}

/** A redis-server of the test's own on a free loopback port, nothing saved to disk:
 * {url, stop()}. `make test-browser` installs it (deps-redis in mk/deps.mk). */
export async function startRedis() {
  let lastError = null
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let exit = null
    const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve((exit = code ?? signal))))
    proc.once('error', (err) => {
      exit = err.code === 'ENOENT' ? 'redis-server is not installed (make deps-redis)' : err.message
    })
    const deadline = Date.now() + 10000
    while (exit === null && Date.now() < deadline) {
      if (await canConnect(port)) {
        const stop = async () => {
          if (proc.exitCode !== null || proc.signalCode !== null) return
          proc.kill('SIGTERM')
          const timer = setTimeout(() => proc.kill('SIGKILL'), 5000)
          await exited
          clearTimeout(timer)
        }
        return { url: `redis://127.0.0.1:${port}/`, stop }
      }
      await sleep(20)
    }
    proc.kill('SIGKILL')
    // Most likely the port was taken between freePort() and the bind: try another.
    lastError = new Error(`redis-server on port ${port} did not start: ${exit}`)
  }
  throw lastError
}

export function launchBrowser() {
  return chromium.launch({
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
}

export const presenceText = (page) => page.locator('[data-testid=presence]').textContent()

/** Waits until the page shows `expected`; fails with what it shows instead. */
export async function expectPresence(page, expected, name) {
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

/** Every page of `pages` ({name: page}) must show `text`. */
export async function expectAll(pages, text) {
  for (const [name, page] of Object.entries(pages)) await expectPresence(page, text, name)
}

/** GET /api/presence of one server. */
export async function presenceOf(server, topic) {
  const res = await fetch(new URL(`api/presence?topic=${encodeURIComponent(topic)}`, server.url))
  return res.json()
}

/** Waits until every server's engine has `connections` in `topic` (in cluster mode the
 * cluster's, seen from each node) and nothing left to poll, then one more window, so
 * that what the pages show next is the settled state. */
export async function settle(servers, topic, connections) {
  const deadline = Date.now() + 5000
  for (const server of [servers].flat()) {
    for (;;) {
      const body = await presenceOf(server, topic)
      if (body.connections === connections && body.pending === 0) break
      if (Date.now() > deadline) {
        assert.fail(`${topic} on ${server.url}: ${JSON.stringify(body)}, expected ${connections} connections`)
      }
      await sleep(20)
    }
  }
  await sleep(2 * WINDOW_MS)
}

/** Opens `query` (relative to the server) in a new page of `context`; page errors and
 * console errors go to `errors` unless `page.ignoreErrors` is set later. */
export async function openPage(context, server, query, name, errors) {
  const page = await context.newPage()
  page.on('pageerror', (err) => {
    if (!page.ignoreErrors) errors.push(`${name}: ${err.message}`)
  })
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !page.ignoreErrors) errors.push(`${name}: console: ${msg.text()}`)
  })
  await page.goto(new URL(query, server.url).toString())
  return page
}

/** "label 0.42s" steps for a test's diagnostic line. */
export function stopwatch() {
  const t0 = performance.now()
  let last = t0
  const steps = []
  return {
    mark(label) {
      const now = performance.now()
      steps.push(`${label} ${((now - last) / 1000).toFixed(2)}s`)
      last = now
    },
    summary: () => `${((performance.now() - t0) / 1000).toFixed(2)} s in the browser (${steps.join(', ')})`,
  }
}
