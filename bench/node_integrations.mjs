// Fan-out cost per changed topic through the Node integrations, against the bare engine
// path, in one process over loopback WebSockets:
//
//   bare       engine.pollReady({envelope: 'event'}) and ws.send of each topic's message
//              (encoded once) to its sockets: what examples/web's servers did by hand
//   socket.io  presence-engine/socket.io: the payload parsed once per topic, one local
//              room emit per topic (Socket.IO encodes the packet once per room)
//   phoenix    presence-engine/phoenix: the engine's Phoenix V2 frame written as is
//
// Each round changes every topic (a user joins, then leaves, alternately) and times the
// server's synchronous work for the whole batch: the poll and the writes into the sockets
// (the integration's own diff callback, called with the same pollReady batch it would
// get from its timer). The clients then drain every message before the next round.
//
//   node bench/node_integrations.mjs [--topics 1000] [--sockets 2] [--rounds 7] [--json]
//   node bench/node_integrations.mjs --check     (a small run that only checks delivery)
//
// --json prints one line per path with every round (bench/run.py's integrations suite);
// --check asserts that every socket got its state and then exactly one message of its own
// topic per diff, and no timing.
//
// Needs bindings/node's dev dependencies (socket.io, socket.io-client, ws).

import http from 'node:http'
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'

const require = createRequire(new URL('../bindings/node/package.json', import.meta.url))
const { Engine } = require('./index.js')
const { attachPresence } = require('./socket.io.js')
const { attachPhoenix } = require('./phoenix.js')
const { Server } = require('socket.io')
const { io: connect } = require('socket.io-client')
const WebSocket = require('ws')

const { values } = parseArgs({
  options: {
    topics: { type: 'string', default: '1000' },
    sockets: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '7' },
    json: { type: 'boolean', default: false },
    // bench/run.py turns the order between runs, so that no path always runs first.
    rotate: { type: 'string', default: '0' },
    check: { type: 'boolean', default: false },
  },
})
const TOPICS = values.check ? 20 : Number(values.topics)
const PER_TOPIC = values.check ? 2 : Number(values.sockets)
const ROUNDS = values.check ? 2 : Number(values.rounds)
const topicName = (i) => `video:${i}`
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/**
 * Counts every socket's presence messages, in all and per socket; with --check, also
 * whether each was of the socket's own topic.
 */
function newCounter() {
  const counter = { n: 0, sockets: [], wrongTopic: [] }
  counter.socket = (topic) => {
    const mine = { topic, n: 0 }
    counter.sockets.push(mine)
    return (topicSeen) => {
      counter.n++
      mine.n++
      if (values.check && topicSeen !== topic) counter.wrongTopic.push(`${topic} got ${topicSeen}`)
    }
  }
  return counter
}

// The topic a bare or Phoenix frame is about (only parsed with --check).
const eventTopic = (data) => (values.check ? JSON.parse(data.toString()).topic : undefined)
const phoenixTopic = (data) => (values.check ? JSON.parse(data.toString())[2] : undefined)

/** Takes the diff callback an integration registers, so the bench can call it itself. */
function captureOnDiff(engine) {
  const captured = {}
  engine.onDiff = (callback, options) => {
    captured.callback = callback
    captured.options = { envelope: options.envelope ?? null }
    // What onDiff would hand the callback: a Batch when asked for one, else pollReady's array.
    captured.batch = options.batch === true
    return () => {}
  }
  return captured
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)))
}

async function bare(engine, counter) {
  const server = http.createServer()
  const wss = new WebSocket.WebSocketServer({ server })
  const rooms = new Map()
  let conn = 1
  wss.on('connection', (ws, req) => {
    const topic = new URL(req.url, 'http://x').searchParams.get('topic')
    engine.track(topic, conn++, null)
    if (!rooms.has(topic)) rooms.set(topic, new Set())
    rooms.get(topic).add(ws)
    ws.send(engine.stateMessage(topic).message)
  })
  const port = await listen(server)
  const clients = []
  for (let t = 0; t < TOPICS; t++) {
    for (let s = 0; s < PER_TOPIC; s++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/?topic=${topicName(t)}`)
      const seen = counter.socket(topicName(t))
      ws.on('message', (data) => seen(eventTopic(data)))
      clients.push(new Promise((resolve) => ws.once('open', () => resolve(ws))))
      // A few hundred connects at a time: more at once overflow the listen backlog.
      if (clients.length % 256 === 0) await Promise.all(clients)
    }
  }
  const sockets = await Promise.all(clients)
  const callback = (batch) => {
    for (const { topic, message } of batch) {
      const room = rooms.get(topic)
      if (!room) continue
      const data = Buffer.from(message)
      for (const ws of room) ws.send(data, { binary: false })
    }
  }
  return {
    callback,
    options: { envelope: 'event' },
    close: async () => {
      for (const ws of sockets) ws.terminate()
      wss.close()
      await new Promise((r) => server.close(r))
    },
  }
}

async function socketio(engine, counter) {
  const server = http.createServer()
  const io = new Server(server)
  const captured = captureOnDiff(engine)
  const presence = attachPresence(io, engine, { key: () => null })
  io.on('connection', (socket) => socket.on('watch', (topic) => socket.join(topic)))
  const port = await listen(server)
  const clients = []
  for (let t = 0; t < TOPICS; t++) {
    for (let s = 0; s < PER_TOPIC; s++) {
      const socket = connect(`http://127.0.0.1:${port}`, { transports: ['websocket'] })
      const seen = counter.socket(topicName(t))
      socket.on('presence_state', (m) => seen(values.check ? m.topic : undefined))
      socket.on('presence_diff', (m) => seen(values.check ? m.topic : undefined))
      socket.emit('watch', topicName(t))
      clients.push(socket)
    }
  }
  return {
    ...captured,
    close: async () => {
      for (const s of clients) s.disconnect()
      presence.close()
      await new Promise((r) => io.close(r))
    },
  }
}

async function phoenix(engine, counter) {
  const server = http.createServer()
  const captured = captureOnDiff(engine)
  const endpoint = attachPhoenix(server, engine)
  const port = await listen(server)
  const clients = []
  for (let t = 0; t < TOPICS; t++) {
    for (let s = 0; s < PER_TOPIC; s++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0`)
      const seen = counter.socket(topicName(t))
      ws.on('message', (data) => {
        // the join reply is not a presence message
        if (!data.toString().includes('"phx_reply"')) seen(phoenixTopic(data))
      })
      clients.push(
        new Promise((resolve) =>
          ws.once('open', () => {
            ws.send(JSON.stringify(['1', '1', topicName(t), 'phx_join', {}]))
            resolve(ws)
          }),
        ),
      )
      if (clients.length % 256 === 0) await Promise.all(clients)
    }
  }
  const sockets = await Promise.all(clients)
  return {
    ...captured,
    close: async () => {
      for (const ws of sockets) ws.terminate()
      endpoint.close()
      await new Promise((r) => server.close(r))
    },
  }
}

async function waitCount(counter, n, what) {
  const deadline = Date.now() + 60000
  while (counter.n < n) {
    if (Date.now() > deadline) throw new Error(`${what}: ${counter.n} of ${n} messages arrived`)
    await sleep(5)
  }
}

async function measure(name, setup) {
  const engine = new Engine({ format: 'counts' })
  const counter = newCounter()
  const path = await setup(engine, counter)
  const poll = () => (path.batch ? engine.pollBatch(path.options) : engine.pollReady(path.options))
  const sockets = TOPICS * PER_TOPIC
  // Every socket's state, then the first diff (all the joins), outside the timing.
  await waitCount(counter, sockets, `${name} states`)
  path.callback(poll())
  await waitCount(counter, 2 * sockets, `${name} first diffs`)
  const times = []
  const polls = []
  for (let round = 0; round < ROUNDS; round++) {
    for (let t = 0; t < TOPICS; t++) {
      if (round % 2 === 0) engine.track(topicName(t), 1e9 + t, `bench-user-${t}`)
      else engine.untrack(topicName(t), 1e9 + t)
    }
    const expected = counter.n + sockets
    const t0 = process.hrtime.bigint()
    const batch = poll()
    const t1 = process.hrtime.bigint()
    path.callback(batch)
    times.push(Number(process.hrtime.bigint() - t0))
    polls.push(Number(t1 - t0))
    if (batch.length !== TOPICS) throw new Error(`${name}: ${batch.length} changed topics, expected ${TOPICS}`)
    await waitCount(counter, expected, `${name} round ${round}`)
  }
  if (values.check) {
    await sleep(100) // a second message of the last round would arrive meanwhile
    const want = 2 + ROUNDS // the state, the first diff, one diff per round
    const bad = counter.sockets.filter((s) => s.n !== want)
    if (bad.length) {
      throw new Error(`${name}: ${bad.length} of ${sockets} sockets got [${[...new Set(bad.map((s) => s.n))]}] messages, not ${want}`)
    }
    if (counter.wrongTopic.length) throw new Error(`${name}: ${counter.wrongTopic.slice(0, 5).join('; ')}`)
  }
  await path.close()
  engine.close()
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const total = median(times)
  return {
    name,
    perTopicUs: total / TOPICS / 1000,
    pollUs: median(polls) / TOPICS / 1000,
    perMessageNs: total / sockets,
    batchMs: total / 1e6,
    runsUs: times.map((ns) => Number((ns / TOPICS / 1000).toFixed(3))),
    pollRunsUs: polls.map((ns) => Number((ns / TOPICS / 1000).toFixed(3))),
  }
}

const paths = [['bare', bare], ['socket.io', socketio], ['phoenix', phoenix]]
const k = Number(values.rotate) % paths.length
const results = []
for (const [name, setup] of [...paths.slice(k), ...paths.slice(0, k)]) {
  const r = await measure(name, setup)
  results.push(r)
  if (values.json) {
    const line = { bench: 'integrations', impl: `node-${name}`, unit: 'us', params: { lang: 'node', topics: TOPICS, sockets: PER_TOPIC }, runs: r.runsUs, poll_us: r.pollRunsUs }
    if (name !== 'bare') line.baseline = 'node-bare'
    process.stdout.write(`${JSON.stringify(line)}\n`)
  }
}
results.sort((a, b) => paths.findIndex(([n]) => n === a.name) - paths.findIndex(([n]) => n === b.name))
const base = results[0].perTopicUs
// With --json, stdout carries the lines and the summary goes to stderr.
const say = values.json ? console.error : console.log
say(`fan-out per changed topic: ${TOPICS} topics x ${PER_TOPIC} sockets, counts format, median of ${ROUNDS} rounds`)
for (const r of results) {
  say(
    `  ${r.name.padEnd(10)} ${r.perTopicUs.toFixed(2).padStart(8)} us/topic (poll ${r.pollUs.toFixed(2)})  ` +
      `${r.perMessageNs.toFixed(0).padStart(6)} ns/socket message  ` +
      `batch ${r.batchMs.toFixed(2)} ms  (${(r.perTopicUs / base).toFixed(2)}x bare)`,
  )
}
if (values.check) say('check: every path delivered every state and diff to every socket, once')
process.exit(0)
