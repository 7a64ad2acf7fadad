// counts format, judged by the seed article's Redux reducer: the web page's own module
// (examples/web/src/state/presence/reducer.js: redux-actions handleActions, an Immutable
// Record, state.merge(payload), count + joins - leaves) in real Redux stores.
//
// The same random sequences as the phoenix test (lib/workload.js) run against an engine
// in counts format. Every polled presence_diff payload is dispatched to stores of its
// topic: one per topic from the start, and stores that join mid-way from
// `engine.state(topic)` (the list as of the last poll, and its seq), often with changes
// still unpolled, applying only the later diffs. After every poll each store must hold
// exactly `list(topic)`, which must be the engine's live counts and the model's. A topic
// is in a poll only if its viewers or users changed: a change of connections alone (a
// second tab of a user already there) sends nothing.
//
// COMPAT_SEED=<n> replays one seed; COMPAT_OPS=<n> changes the operations per seed.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isDeepStrictEqual } from 'node:util'
import { Engine } from 'presence-engine'
import { createStore } from 'redux'
import PresenceReducer, { presenceDiff, setPresence } from '../../examples/web/src/state/presence/reducer.js'
import { makeRandom, seeds } from './lib/random.js'
import { TOPICS, Workload } from './lib/workload.js'

const OPS_PER_SEED = Number(process.env.COMPAT_OPS || 6000)
const SEEDS = seeds([11, 22, 33, 44])

/** The article's shapes, exactly: no other key at any level. */
function assertCountsShape(value, what) {
  assert.deepEqual(Object.keys(value).sort(), ['users', 'viewers'], `${what}: groups`)
  for (const group of ['viewers', 'users']) {
    assert.deepEqual(Object.keys(value[group]), ['count'], `${what}: ${group}`)
    assert.ok(Number.isSafeInteger(value[group].count) && value[group].count >= 0, `${what}: ${group}.count`)
  }
}

class ReduxClient {
  constructor(name, stateJson, seq, cover) {
    this.name = name
    this.seq = seq
    this.cover = cover
    this.store = createStore(PresenceReducer)
    this.store.dispatch(setPresence(JSON.parse(stateJson)))
  }

  get state() {
    return this.store.getState().toJS()
  }

  deliver({ seq, payload }) {
    if (seq === 1 && this.seq !== 0) {
      // The engine dropped the topic when its last presence left; a diff with seq 1
      // applies to the empty state, which is what the client must hold by then.
      assert.deepEqual(this.state, { viewers: { count: 0 }, users: { count: 0 } }, `${this.name}: seq restart`)
      this.cover['seq restarts seen by a store (topic dropped, then back)'] += 1
    } else if (seq !== this.seq + 1) {
      throw new Error(`${this.name}: got seq ${seq} after ${this.seq}`)
    }
    this.seq = seq
    this.store.dispatch(presenceDiff(payload))
  }
}

function run(seed, totals) {
  const random = makeRandom(seed)
  const engine = new Engine({ format: 'counts' })
  const workload = new Workload(engine, random)
  const cover = totals.cover
  const clients = new Map(TOPICS.map((t) => [t, [new ReduxClient(`${t}/from-start`, engine.listJson(t), 0, cover)]]))
  let lateId = 0
  let lastConnections = new Map(TOPICS.map((t) => [t, 0]))
  let window = 0
  let sincePoll = 0
  const where = () => `seed ${seed}, after ${workload.ops} operations`

  const joinLate = (topic) => {
    const { json, seq } = engine.state(topic)
    assertCountsShape(JSON.parse(json), `${where()}: state(${topic})`)
    const { viewers, users } = workload.expectedCounts(topic)
    if (!isDeepStrictEqual(JSON.parse(json), { viewers: { count: viewers }, users: { count: users } })) {
      cover['late joins with unpolled changes in their topic'] += 1
    }
    const list = clients.get(topic)
    list.push(new ReduxClient(`${topic}/late-${++lateId}`, json, seq, cover))
    if (list.length > 6) list.splice(1, 1)
    cover['stores joined mid-way'] += 1
  }

  const poll = () => {
    const before = new Map(TOPICS.map((t) => [t, engine.list(t)]))
    const batch = engine.pollDiff()
    const connectionsBefore = lastConnections
    lastConnections = new Map(TOPICS.map((t) => [t, engine.counts(t).connections]))
    totals.polls += 1
    if (batch.length === 0) cover['polls that returned nothing'] += 1
    assert.equal(new Set(batch.map((e) => e.topic)).size, batch.length, `${where()}: a topic twice in one poll`)
    for (const entry of batch) {
      const { topic, payload, counts } = entry
      assert.deepEqual(Object.keys(payload).sort(), ['joins', 'leaves'], `${where()}: payload keys`)
      assertCountsShape(payload.joins, `${where()}: joins of ${topic}`)
      assertCountsShape(payload.leaves, `${where()}: leaves of ${topic}`)
      assert.deepEqual(counts, engine.counts(topic), `${where()}: envelope counts of ${topic}`)
      // previous state + joins - leaves = the new totals, per group.
      const prev = before.get(topic)
      for (const g of ['viewers', 'users']) {
        assert.equal(prev[g].count + payload.joins[g].count - payload.leaves[g].count, counts[g], `${where()}: ${g} of ${topic}`)
      }
      // Clients see viewers and users only: a topic whose change was of connections
      // alone (a second tab of a user already there) is not in the poll at all.
      assert.ok(
        prev.viewers.count !== counts.viewers || prev.users.count !== counts.users,
        `${where()}: a diff for ${topic} although its viewers and users did not change`,
      )
      for (const client of clients.get(topic)) client.deliver(entry)
    }

    for (const topic of TOPICS) {
      const list = engine.list(topic)
      assertCountsShape(list, `${where()}: list(${topic})`)
      if (!batch.some((e) => e.topic === topic)) {
        assert.deepEqual(list, before.get(topic), `${where()}: ${topic} changed with no diff`)
        if (connectionsBefore.get(topic) !== engine.counts(topic).connections) {
          cover['polls where only connections changed (no diff)'] += 1
        }
      }
      const live = engine.counts(topic)
      assert.deepEqual(live, workload.expectedCounts(topic), `${where()}: counts(${topic}) against the model`)
      assert.deepEqual(list, { viewers: { count: live.viewers }, users: { count: live.users } }, `${where()}: list(${topic}) against counts`)
      for (const client of clients.get(topic)) {
        assert.deepEqual(client.state, list, `${where()}: store ${client.name} against list(${topic})`)
        totals.comparisons += 1
      }
    }
    sincePoll = 0
    window = random.chance(0.6) ? random.int(7) : random.chance(0.75) ? 7 + random.int(14) : 40
  }

  while (workload.ops < OPS_PER_SEED) {
    if (random.chance(0.04)) joinLate(random.pick(TOPICS))
    workload.step()
    sincePoll += 1
    if (sincePoll >= window) {
      poll()
      if (random.chance(0.05)) {
        assert.deepEqual(engine.pollDiff(), [], `${where()}: a poll right after a poll`)
        cover['polls that returned nothing'] += 1
      }
    }
  }
  poll()

  for (const [kind, n] of Object.entries(workload.byKind)) totals.byKind[kind] = (totals.byKind[kind] || 0) + n
  totals.ops += workload.ops
  engine.close()
}

test("the seed article's Redux reducer holds the engine's counts after every poll", (t) => {
  const started = performance.now()
  const totals = {
    ops: 0,
    polls: 0,
    comparisons: 0,
    byKind: {},
    cover: Object.fromEntries(
      [
        'stores joined mid-way',
        'late joins with unpolled changes in their topic',
        'seq restarts seen by a store (topic dropped, then back)',
        'polls that returned nothing',
        'polls where only connections changed (no diff)',
      ].map((k) => [k, 0]),
    ),
  }
  for (const seed of SEEDS) run(seed, totals)

  t.diagnostic(
    `counts: ${totals.ops} random operations replayed (${SEEDS.length} seeds), ${totals.polls} polls, ` +
      `${totals.comparisons} store states compared with list(), in ${Math.round(performance.now() - started)} ms`,
  )
  t.diagnostic(`operations: ${JSON.stringify(totals.byKind)}`)
  t.diagnostic(`covered: ${JSON.stringify(totals.cover)}`)
  assert.ok(totals.ops >= OPS_PER_SEED * SEEDS.length)
  for (const kind of ['track', 'untrack', 'update', 'untrackConn', 'bounce', 'flicker', 'emptyTopic']) {
    assert.ok(totals.byKind[kind] > 0, `the sequences never did: ${kind}`)
  }
  for (const [what, n] of Object.entries(totals.cover)) assert.ok(n > 0, `never covered: ${what}`)
})

// Why a joining client must start from list() and its seq, not from the live counts: the
// join that is not polled yet would reach it twice, once in the snapshot and once in the
// next diff (the drift the seed article's reducer suffered). This also shows that the
// comparison above can tell a drifted store from a right one.
test('a store started from live counts instead of list() counts an unpolled join twice', () => {
  const engine = new Engine({ format: 'counts' })
  engine.track('video:9', 1, 'alice')
  engine.pollDiff()
  engine.track('video:9', 2, null)

  const live = engine.counts('video:9')
  const naive = createStore(PresenceReducer)
  naive.dispatch(setPresence({ viewers: { count: live.viewers }, users: { count: live.users } }))
  const { json, seq } = engine.state('video:9')
  const proper = createStore(PresenceReducer)
  proper.dispatch(setPresence(JSON.parse(json)))

  const [entry] = engine.pollDiff()
  assert.equal(entry.seq, seq + 1)
  naive.dispatch(presenceDiff(entry.payload))
  proper.dispatch(presenceDiff(entry.payload))
  assert.deepEqual(proper.getState().toJS(), engine.list('video:9'))
  assert.deepEqual(proper.getState().toJS(), { viewers: { count: 1 }, users: { count: 1 } })
  assert.deepEqual(naive.getState().toJS(), { viewers: { count: 2 }, users: { count: 1 } })
  engine.close()
})
