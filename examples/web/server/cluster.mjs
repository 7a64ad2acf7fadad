// The cluster demo: a redis-server of its own and NODES demo servers linked through it.
//
//   node server/cluster.mjs [--server python|node] [--nodes 3] [--host 127.0.0.1] [--port 8000]
//     [--python PATH] [--channel presence-demo] [--tick-ms 100] [--down-after-ms 3000]
//
// `make demo NODES=3` (DEMO=python|node) runs this. It starts redis-server on a free
// loopback port (no persistence: no RDB, no AOF, nothing written to disk), generates a
// shared secret for this run, and starts NODES servers of the chosen language on
// consecutive ports (--port, --port + 1, ...), each an engine in cluster mode with its own
// node name (a, b, c, ...), joined through the engine's built-in Redis link on one channel.
// The secret reaches the servers in their environment (PRESENCE_DEMO_SECRET), never on a
// command line.
//
// Ctrl-C (or SIGTERM) stops the servers first — each stops its Redis link, which
// publishes its departure, so the others drop its presences at once — and redis-server
// last. The children run in their own sessions so that the terminal's Ctrl-C reaches this
// script only, which stops them in that order. If a server fails to start or dies, every
// other process is stopped too and this exits non-zero.

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import net from 'node:net'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const SECRET_ENV = 'PRESENCE_DEMO_SECRET'

const { values: opts } = parseArgs({
  options: {
    server: { type: 'string', default: 'python' },
    nodes: { type: 'string', default: '3' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '8000' },
    python: { type: 'string', default: 'python3' },
    channel: { type: 'string', default: 'presence-demo' },
    'tick-ms': { type: 'string', default: '100' },
    'down-after-ms': { type: 'string', default: '3000' },
    'redis-server': { type: 'string', default: process.env.REDIS_SERVER || 'redis-server' },
  },
})

const NODES = Number(opts.nodes)
const BASE_PORT = Number(opts.port)
if (!Number.isInteger(NODES) || NODES < 2 || NODES > 64) usage('--nodes must be 2 to 64')
if (!Number.isInteger(BASE_PORT) || BASE_PORT < 1 || BASE_PORT + NODES - 1 > 65535) usage('--port must leave room for every node')
const SERVERS = {
  python: [opts.python, [path.join(HERE, 'python/server.py')]],
  node: [process.execPath, [path.join(HERE, 'node/server.js')]],
}
if (!SERVERS[opts.server]) usage('--server must be python or node')

function usage(message) {
  console.error(`cluster.mjs: ${message}`)
  process.exit(2)
}

const nodeName = (i) => (i < 26 ? String.fromCharCode(97 + i) : `n${i + 1}`)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Every child process: {name, child, exited (a promise)}; stopped in reverse order. */
const children = []
let stopping = false

function start(name, command, args, env, { quiet = false } = {}) {
  // detached: a session of its own, so the terminal's Ctrl-C reaches this script only.
  const child = spawn(command, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  // 'close': exited and its output all relayed.
  const exited = new Promise((resolve) => child.once('close', (code, signal) => resolve(code ?? signal)))
  const entry = { name, child, exited, output: '' }
  const relay = (stream, out) =>
    readline.createInterface({ input: stream }).on('line', (line) => {
      entry.output += `${line}\n`
      if (!quiet || stopping) out.write(`[${name}] ${line}\n`)
    })
  relay(child.stdout, process.stdout)
  relay(child.stderr, process.stderr)
  child.on('error', (err) => {
    console.error(`[${name}] could not start ${command}: ${err.message}`)
  })
  exited.then((how) => {
    entry.done = true
    if (!stopping) {
      if (quiet && entry.output) process.stderr.write(`${entry.output.trimEnd().replace(/^/gm, `[${name}] `)}\n`)
      console.error(`[${name}] exited (${how}) while the cluster was running: stopping everything`)
      shutdown(1)
    }
  })
  children.push(entry)
  return entry
}

async function stop(entry, timeoutMs = 10000) {
  if (entry.done || entry.child.exitCode !== null || entry.child.signalCode !== null) return
  entry.child.kill('SIGTERM')
  const timer = setTimeout(() => entry.child.kill('SIGKILL'), timeoutMs)
  await entry.exited
  clearTimeout(timer)
}

async function shutdown(code) {
  if (stopping) return
  stopping = true
  console.log('stopping the servers, then redis-server')
  // The servers first, together: each publishes its departure through Redis on the way out.
  await Promise.all(children.filter((c) => c.name !== 'redis').map((c) => stop(c)))
  const redis = children.find((c) => c.name === 'redis')
  if (redis) await stop(redis)
  process.exit(code)
}

process.on('SIGINT', () => shutdown(0))
process.on('SIGTERM', () => shutdown(0))
process.on('SIGHUP', () => shutdown(0))
// Last resort (an exception in this script): no orphan keeps a port.
process.on('exit', () => {
  for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

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

/** redis-server on a free loopback port, nothing saved; resolves with its URL once it accepts connections. */
async function startRedis() {
  const port = await freePort()
  const redis = start(
    'redis',
    opts['redis-server'],
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
    process.env,
    { quiet: true }, // its start-up banner; shown if it fails
  )
  const deadline = Date.now() + 10000
  while (!redis.done && Date.now() < deadline) {
    if (await canConnect(port)) return `redis://127.0.0.1:${port}/`
    await sleep(20)
  }
  throw new Error(`redis-server did not start on port ${port} (make deps-redis installs it)`)
}

/** One demo server in cluster mode; resolves with its URL once it listens. */
function startNode(i, redisUrl, env) {
  const name = nodeName(i)
  const [command, args] = SERVERS[opts.server]
  const entry = start(
    name,
    command,
    [
      ...args,
      '--host', opts.host,
      '--port', String(BASE_PORT + i),
      '--node', name,
      '--redis', redisUrl,
      '--channel', opts.channel,
      '--secret-env', SECRET_ENV,
      '--tick-ms', opts['tick-ms'],
      '--down-after-ms', opts['down-after-ms'],
    ],
    env,
  )
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const m = entry.output.match(/listening on (\S+)/)
      if (m) {
        clearInterval(timer)
        resolve({ name, url: m[1] })
      } else if (entry.done) {
        clearInterval(timer)
        reject(new Error(`node ${name} did not start`))
      }
    }, 25)
  })
}

try {
  const redisUrl = await startRedis()
  console.log(`redis-server: ${redisUrl} (no persistence), channel ${opts.channel}`)
  const env = { ...process.env, [SECRET_ENV]: randomBytes(24).toString('base64url') }
  const nodes = await Promise.all(Array.from({ length: NODES }, (_, i) => startNode(i, redisUrl, env)))
  const language = opts.server === 'node' ? 'Node' : 'Python'
  console.log(`\n${NODES} ${language} servers, one presence cluster (Ctrl-C stops them all and redis-server):`)
  for (const { name, url } of nodes) console.log(`  node ${name}: ${url}?v=1`)
  console.log(`open ${nodes[0].url}?v=1&user=alice and ${nodes[1].url}?v=1&user=bob: both count 2 users`)
  // stdout stays open for the servers' output; this waits for a signal.
} catch (err) {
  console.error(`cluster.mjs: ${err.message}`)
  shutdown(1)
}
