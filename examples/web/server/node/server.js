// The demo server in Node: presence-engine's Phoenix Channels endpoint
// (presence-engine/phoenix, over `ws`) for the sockets, node:http for the built page
// (dist/) on the same port. The Python server (../python/server.py) speaks the same
// protocol.
//
//   node server/node/server.js [--host 127.0.0.1] [--port 8000] [--static DIR] [--window-ms 100]
//     [--node NAME --redis URL [--channel presence-demo] [--secret-env PRESENCE_DEMO_SECRET]
//      [--tick-ms 250] [--down-after-ms 3000]]
//
// With --node the engine runs in cluster mode as that node, linked to the other nodes
// through the engine's built-in Redis link on one pub/sub channel; the shared secret (16
// bytes or more) is read from the environment variable named by --secret-env, never from
// the command line. Without --node: one node, no external service.
//
// Protocol: Phoenix Channels V2 on ws://HOST:PORT/socket/websocket (phoenix.js
// `new Socket('/socket')`). A channel's topic is video:<id>; join params {user: <name>},
// none or empty for an anonymous viewer.
//   phx_join   -> phx_reply {"status":"ok","response":{"seq":S,"node":N}} (N: this node's
//                 name in cluster mode, else null), then a presence_state push (the
//                 engine's counts as of its last poll, S the seq of the last diff in it);
//                 a bad topic or user, or a join the engine refuses, replies
//                 {"status":"error","response":{"reason":...}}
//   each poll  -> one presence_diff push per changed topic to every socket joined to it
//   heartbeat (topic "phoenix") -> ok; phx_leave -> untrack, ok; socket closed -> untrack all
// GET /api/presence?topic=T answers the topic's live counts, the seq of its last polled
// diff and the engine's pending topics (for tests and curious humans; numbers only), and
// in cluster mode this node's name and how many other nodes it currently sees.

import fs from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ConfigError, Engine } from 'presence-engine'
import { JoinRefused, attachPhoenix } from 'presence-engine/phoenix'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const TOPIC_PATTERN = /^video:[A-Za-z0-9_-]{1,32}$/
const USER_PATTERN = /^[A-Za-z0-9_.-]{1,32}$/
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
}

const { values: opts } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: process.env.PORT || '8000' },
    static: { type: 'string', default: path.resolve(HERE, '../../dist') },
    'window-ms': { type: 'string', default: '100' },
    node: { type: 'string' },
    redis: { type: 'string' },
    channel: { type: 'string', default: 'presence-demo' },
    'secret-env': { type: 'string', default: 'PRESENCE_DEMO_SECRET' },
    'tick-ms': { type: 'string', default: '250' },
    'down-after-ms': { type: 'string', default: '3000' },
  },
})
const staticRoot = path.resolve(opts.static)
const windowMs = Number(opts['window-ms'])

function usage(message) {
  console.error(`server.js: ${message}`)
  process.exit(2)
}

/** The cluster options, or null for a single node. */
function clusterOptions() {
  if (opts.node === undefined) {
    if (opts.redis !== undefined) usage('--redis needs --node (the name of this node)')
    return null
  }
  if (!opts.redis) usage('--node needs --redis URL (the built-in link joins the nodes through Redis)')
  const secret = process.env[opts['secret-env']]
  if (!secret) usage(`cluster mode needs the shared secret in $${opts['secret-env']} (16 bytes or more)`)
  return { node: opts.node, secret, tickMs: Number(opts['tick-ms']), downAfterMs: Number(opts['down-after-ms']) }
}

const cluster = clusterOptions()
let engine
try {
  engine = new Engine({ format: 'counts', cluster })
} catch (err) {
  if (err instanceof ConfigError) usage(err.message) // e.g. a secret under 16 bytes
  throw err
}
if (cluster) engine.startRedis(opts.redis, opts.channel)

async function serveStatic(req, res) {
  const url = new URL(req.url, 'http://localhost')
  let rel
  try {
    rel = decodeURIComponent(url.pathname)
  } catch {
    res.writeHead(400).end('bad path')
    return
  }
  if (rel.endsWith('/')) rel += 'index.html'
  let file = path.resolve(staticRoot, `.${rel}`)
  if (file !== staticRoot && !file.startsWith(staticRoot + path.sep)) {
    res.writeHead(403).end('forbidden')
    return
  }
  let body
  try {
    body = await fs.readFile(file)
  } catch {
    // Any other path without an extension is the page itself (it reads ?v= and ?user=).
    if (path.extname(rel) !== '') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
      return
    }
    file = path.join(staticRoot, 'index.html')
    try {
      body = await fs.readFile(file)
    } catch {
      res.writeHead(503, { 'content-type': 'text/plain' })
      res.end(`The page is not built: run \`make demo-node\` (or \`npm run build\` in examples/web).\n`)
      return
    }
  }
  const hashed = rel.startsWith('/assets/')
  res.writeHead(200, {
    'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
    'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
    'x-content-type-options': 'nosniff',
  })
  res.end(req.method === 'HEAD' ? undefined : body)
}

const server = http.createServer((req, res) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end()
    return
  }
  const url = new URL(req.url, 'http://localhost')
  if (url.pathname === '/api/presence') {
    const topic = url.searchParams.get('topic') || ''
    if (!TOPIC_PATTERN.test(topic)) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('topic must be video:<id>')
      return
    }
    const body = JSON.stringify({
      topic,
      ...engine.counts(topic),
      seq: engine.state(topic).seq,
      pending: engine.stats().topicsPending,
      ...(cluster && { node: cluster.node, peers: engine.clusterStats().nodes }),
    })
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body)
    return
  }
  serveStatic(req, res).catch((err) => {
    console.error(err)
    if (!res.headersSent) res.writeHead(500)
    res.end()
  })
})

const endpoint = attachPhoenix(server, engine, {
  node: cluster ? cluster.node : null,
  intervalMs: windowMs,
  maxPayload: 4096,
  key: (topic, params) => {
    if (!TOPIC_PATTERN.test(topic)) throw new JoinRefused('topic must be video:<id>')
    const user = params.user ?? null
    if (user === null || user === '') return null
    if (typeof user !== 'string' || !USER_PATTERN.test(user)) throw new JoinRefused('user must be 1-32 of A-Z a-z 0-9 _ . -')
    return user
  },
})

// A port in use (or any error of the listening socket): say so and exit.
const listenFailed = (err) => {
  console.error(`server.js: ${err.message}`)
  process.exit(1)
}
server.on('error', listenFailed)

server.listen(Number(opts.port), opts.host, () => {
  const { port } = server.address()
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host
  const mode = cluster ? ` as cluster node ${cluster.node} (Redis ${opts.redis}, channel ${opts.channel})` : ''
  console.log(`presence demo (node) listening on http://${host}:${port}/${mode}`)
  console.log(`open http://${host}:${port}/?v=1 (anonymous) or http://${host}:${port}/?v=1&user=alice`)
})

let stopping = false
async function shutdown() {
  if (stopping) return
  stopping = true
  endpoint.close()
  const closed = new Promise((resolve) => server.close(resolve))
  // server.close() waits for every connection that is not idle, and one whose request was
  // still arriving (a page reconnecting as the server stops) held the process until the
  // request timeout; the WebSockets are closed by endpoint.close() already.
  server.closeAllConnections()
  // The Redis link publishes this node's departure before it stops: the other nodes drop
  // its presences at once instead of after down-after-ms.
  if (cluster) {
    try {
      await engine.stopRedis()
    } catch (err) {
      console.error(`stopping the Redis link: ${err.message}`)
    }
  }
  await closed
  engine.close()
  process.exit(0)
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)
