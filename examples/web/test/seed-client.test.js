// The seed article's client against presence-engine/phoenix, without a browser: the
// official phoenix.js Socket and Channel (over `ws` in Node), `channel.on("presence_state")`
// → setPresence and `channel.on("presence_diff")` → presenceDiff into the page's own Redux
// reducer (src/state/presence/reducer.js) in real Redux stores, one per channel. Random
// joins, leaves (phx_leave) and socket closes over a few topics, users with several tabs
// and anonymous viewers; after each round settles, every joined channel's store must hold
// exactly the engine's live counts of its topic.
//
// SEED_CLIENT_SEED=<n> replays one seed.

import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import { Socket } from 'phoenix'
import { Engine } from 'presence-engine'
import { attachPhoenix } from 'presence-engine/phoenix'
import { createStore } from 'redux'
import WebSocket from 'ws'
import PresenceReducer, { presenceDiff, setPresence } from '../src/state/presence/reducer.js'
import { sleep } from './helpers.js'

const WINDOW_MS = 20
const TOPICS = ['video:a', 'video:b', 'video:c']
const USERS = ['alice', 'bob', 'carol', 'dave', null, null]
const SEED = Number(process.env.SEED_CLIENT_SEED || 20261203)

function random(seed) {
  let x = seed >>> 0 || 1
  return (n) => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % n
  }
}

test('the seed reducer fed by phoenix.js holds the engine\'s counts through random joins, leaves and closes', { timeout: 60000 }, async () => {
  const engine = new Engine({ format: 'counts' })
  const server = http.createServer()
  const endpoint = attachPhoenix(server, engine, { intervalMs: WINDOW_MS })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `ws://127.0.0.1:${server.address().port}/socket`
  const pick = random(SEED)
  const sockets = []
  const channels = [] // {socket, channel, topic, store, joined}

  const openSocket = () => {
    const socket = new Socket(url, { transport: WebSocket, reconnectAfterMs: () => 50 })
    socket.connect()
    sockets.push(socket)
    return socket
  }
  const join = (socket) => {
    const topic = TOPICS[pick(TOPICS.length)]
    const user = USERS[pick(USERS.length)]
    // phoenix.js keeps one channel per topic on a socket: a second join of it leaves the first.
    for (const c of channels) if (c.socket === socket && c.topic === topic) c.joined = false
    const store = createStore(PresenceReducer)
    const channel = socket.channel(topic, user ? { user } : {})
    const entry = { socket, channel, topic, store, joined: false }
    channel.on('presence_state', (payload) => store.dispatch(setPresence(payload)))
    channel.on('presence_diff', (payload) => store.dispatch(presenceDiff(payload)))
    channel.join().receive('ok', () => (entry.joined = true))
    channels.push(entry)
  }

  try {
    for (let i = 0; i < 4; i++) openSocket()
    let checked = 0
    for (let round = 0; round < 12; round++) {
      for (let op = 0; op < 8; op++) {
        const live = channels.filter((c) => c.joined)
        const r = pick(10)
        if (r < 5 || live.length === 0) join(sockets[pick(sockets.length)])
        else if (r < 8) {
          const c = live[pick(live.length)]
          c.joined = false
          c.channel.leave()
        } else if (r < 9) {
          // A socket closes: every channel of it goes.
          const i = pick(sockets.length)
          const [gone] = sockets.splice(i, 1)
          for (const c of channels) if (c.socket === gone) c.joined = false
          gone.disconnect()
          openSocket()
        } else openSocket()
      }
      // Settled: every reply in, nothing left to poll, a few windows for the pushes.
      const deadline = Date.now() + 5000
      for (;;) {
        await sleep(3 * WINDOW_MS)
        const expected = channels.filter((c) => c.joined || c.channel.state === 'joining')
        if (expected.every((c) => c.joined) && engine.pendingTopics() === 0) break
        assert.ok(Date.now() < deadline, `round ${round}: joins not answered`)
      }
      await sleep(3 * WINDOW_MS)
      for (const c of channels.filter((c) => c.joined)) {
        const { viewers, users } = engine.counts(c.topic)
        assert.deepEqual(c.store.getState().toJS(), { viewers: { count: viewers }, users: { count: users } }, `round ${round}, ${c.topic} (seed ${SEED})`)
        checked += 1
      }
    }
    assert.ok(checked > 20, `only ${checked} stores checked`)
    const total = TOPICS.reduce((n, t) => n + engine.counts(t).connections, 0)
    assert.equal(total, channels.filter((c) => c.joined).length, 'one presence per joined channel')
  } finally {
    for (const s of sockets) s.disconnect()
    endpoint.close()
    await new Promise((resolve) => server.close(resolve))
    engine.close()
  }
})
