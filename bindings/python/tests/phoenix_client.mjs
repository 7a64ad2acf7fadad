// The official `phoenix` npm client (tests/compat's node_modules) against a Python
// PhoenixEndpoint: `node phoenix_client.mjs HTTP_URL FORMAT`.
//
// Four sockets join one topic (alice twice, bob, an anonymous viewer). In phoenix format
// each channel feeds a phoenix.js `Presence`, whose state must equal the engine's list;
// in counts format each feeds the seed article's Redux reducer
// (examples/web/src/state/presence/reducer.js) through channel.on("presence_state") and
// channel.on("presence_diff"), whose counts must equal the engine's. Then bob leaves,
// the viewer's socket closes, a join the engine refuses gets its error reply, and the
// server restarts (this prints "restart" and waits for a line on stdin): the sockets
// reconnect and rejoin by themselves, and the views match the new engine. Prints "ok".

import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { isDeepStrictEqual } from 'node:util'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const compat = createRequire(path.join(ROOT, 'tests/compat/package.json'))
const { Socket, Presence } = compat('phoenix')
const { createStore } = compat('redux')
const reducer = await import(pathToFileURL(path.join(ROOT, 'examples/web/src/state/presence/reducer.js')).href)
const PresenceReducer = reducer.default
const { setPresence, presenceDiff } = reducer

const [base, format] = process.argv.slice(2)
const TOPIC = 'video:phx'
const WITHIN_MS = 10000
// Short enough that the sleep below spans several heartbeats, long enough that a reply
// delayed by a loaded machine does not count as phoenix.js's heartbeat timeout.
const HEARTBEAT_MS = 1000
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const stdin = readline.createInterface({ input: process.stdin })
const lines = stdin[Symbol.asyncIterator]()

// Node 20's WebSocket reports a failed opening handshake (a refused connection, a server
// shutting down) with an error event and no close event, where browsers fire both as the
// WebSocket standard says; phoenix.js reconnects on close, so it is given the close.
class BrowserWebSocket extends WebSocket {
  constructor(...args) {
    super(...args)
    let closed = false
    this.addEventListener('close', () => {
      closed = true
    })
    this.addEventListener('error', () =>
      setTimeout(() => {
        if (!closed && this.readyState !== WebSocket.OPEN) {
          closed = true
          this.onclose?.({ code: 1006, reason: '', wasClean: false })
        }
      }, 0),
    )
  }
}

async function engine() {
  const res = await fetch(`${base}counts?topic=${encodeURIComponent(TOPIC)}`)
  return res.json()
}

function client(user) {
  const socket = new Socket(`${base.replace(/^http/, 'ws')}socket`, {
    transport: BrowserWebSocket,
    params: {},
    reconnectAfterMs: () => 50,
    rejoinAfterMs: () => 50,
    heartbeatIntervalMs: HEARTBEAT_MS,
  })
  socket.connect()
  const channel = socket.channel(TOPIC, user === undefined ? {} : { user })
  const c = { user, socket, channel, replies: [], states: 0 }
  if (format === 'phoenix') {
    c.presence = new Presence(channel)
    c.view = () => c.presence.state
  } else {
    c.store = createStore(PresenceReducer)
    channel.on('presence_state', (payload) => {
      c.states += 1
      c.store.dispatch(setPresence(payload))
    })
    channel.on('presence_diff', (payload) => c.store.dispatch(presenceDiff(payload)))
    c.view = () => c.store.getState().toJS()
  }
  channel.join().receive('ok', (response) => c.replies.push(response))
  return c
}

function expectedView(live) {
  return format === 'phoenix' ? live.list : { viewers: { count: live.viewers }, users: { count: live.users } }
}

// Waits until the engine shows `counts`, every client's view equals the engine's, and
// every client has had at least `replies` join replies (a view can match before the
// reply of a rejoin arrives: the engine tracks the join before it answers).
async function views(clients, counts, what, replies = 1) {
  const deadline = Date.now() + WITHIN_MS
  let live
  while (Date.now() < deadline) {
    live = await engine()
    const same = ['viewers', 'users', 'connections'].every((k) => live[k] === counts[k])
    const joined = clients.every((c) => c.replies.length >= replies)
    // Compared as plain JSON values (phoenix.js builds its state with its own objects).
    if (same && joined && clients.every((c) => isDeepStrictEqual(JSON.parse(JSON.stringify(c.view())), expectedView(live)))) return
    await sleep(20)
  }
  throw new Error(
    `${what}: engine ${JSON.stringify(live)}, views ${JSON.stringify(clients.map((c) => c.view()))}, ` +
      `replies ${JSON.stringify(clients.map((c) => c.replies.length))}`,
  )
}

const alice1 = client('alice')
const alice2 = client('alice')
const bob = client('bob')
const anon = client('') // an empty user is an anonymous viewer
await views([alice1, alice2, bob, anon], { viewers: 1, users: 2, connections: 4 }, 'four joins')
for (const c of [alice1, alice2, bob, anon]) {
  assert.equal(c.replies.length, 1)
  assert.deepEqual(Object.keys(c.replies[0]).sort(), ['node', 'seq'])
  assert.equal(c.replies[0].node, null)
  assert.ok(Number.isInteger(c.replies[0].seq) && c.replies[0].seq >= 0)
}
assert.equal(alice1.replies[0].seq, 0, 'the first joiner gets the empty state of seq 0')

await new Promise((resolve) => bob.channel.leave().receive('ok', resolve))
await views([alice1, alice2, anon], { viewers: 1, users: 1, connections: 3 }, 'bob left')
anon.socket.disconnect()
await views([alice1, alice2], { viewers: 0, users: 1, connections: 2 }, 'the viewer closed its socket')

// A key the engine refuses (longer than max_key_bytes): an error reply naming the status.
const refusedSocket = new Socket(`${base.replace(/^http/, 'ws')}socket`, { transport: BrowserWebSocket })
refusedSocket.connect()
const refused = await new Promise((resolve) =>
  refusedSocket.channel(TOPIC, { user: 'x'.repeat(300) }).join().receive('error', resolve).receive('ok', () => resolve('ok')),
)
assert.deepEqual(refused, { reason: 'too_long' })
refusedSocket.disconnect()
await views([alice1, alice2], { viewers: 0, users: 1, connections: 2 }, 'a refused join changes nothing')

// Heartbeats are answered: a socket that sent several is still open.
const repliesBefore = alice1.replies.length
await sleep(3.5 * HEARTBEAT_MS)
assert.ok(alice1.socket.isConnected(), 'the socket survived its heartbeats')
assert.equal(alice1.replies.length, repliesBefore, 'no heartbeat timeout made the socket rejoin')

console.log('restart')
await lines.next()
// Both alice sockets reconnect and rejoin the new engine by themselves.
await views([alice1, alice2], { viewers: 0, users: 1, connections: 2 }, 'after the server restarted', 2)
for (const c of [alice1, alice2, bob]) c.socket.disconnect()
console.log('ok')
stdin.close()
process.exit(0)
