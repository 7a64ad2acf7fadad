// The leave grace (leaveGraceMs), judged by the same clients as the other tests: the
// official phoenix client and the seed article's Redux reducer (the web page's module).
//
// A room where logged-in users and anonymous viewers reload the page: a connection leaves,
// and a poll or a few later the same user (or, for a viewer, a new anonymous connection)
// comes back on a new connection. Two engines get the same calls: one with a grace longer
// than any reload, one without. Without it the clients see each reload: the key leaves
// phoenix.js's list, the reducer's count dips. With it they see nothing at all: not one
// diff when the meta comes back unchanged; a phoenix update (phx_ref_prev, the key never
// leaving the list) when it comes back changed (or, when several connections of a key
// reload at once, finds its own held meta taken back by a changed one). Every store and
// client equals
// `list(topic)` after every poll. A leave that no rejoin follows reaches the clients once
// its window ends.
//
// COMPAT_SEED=<n> replays one seed.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Presence } from 'phoenix'
import { Engine } from 'presence-engine'
import { createStore } from 'redux'
import PresenceReducer, { presenceDiff, setPresence } from '../../examples/web/src/state/presence/reducer.js'
import { plain } from './lib/phoenix-clients.js'
import { makeRandom, seeds } from './lib/random.js'

const SEEDS = seeds([5, 6, 7])
const TOPIC = 'video:1'
const LONG = 600000
const RELOADS = 400

/**
 * A phoenix.js client of the static API, counting the keys that leave its list and the
 * metas that leave without an update naming them (phx_ref_prev).
 */
class PhoenixClient {
  constructor(engine) {
    this.state = Presence.syncState({}, JSON.parse(engine.listJson(TOPIC)))
    this.keysGone = 0
    this.plainLeaves = 0
    this.plainJoins = 0
    this.diffs = 0
  }

  deliver(payload) {
    this.diffs += 1
    for (const [key, { metas }] of Object.entries(payload.leaves)) {
      const named = new Set((payload.joins[key]?.metas ?? []).map((m) => m.phx_ref_prev))
      this.plainLeaves += metas.filter((m) => !named.has(m.phx_ref)).length
    }
    for (const { metas } of Object.values(payload.joins)) {
      this.plainJoins += metas.filter((m) => !('phx_ref_prev' in m)).length
    }
    this.state = Presence.syncDiff(this.state, payload, null, (_key, current) => {
      if (current.metas.length === 0) this.keysGone += 1
    })
  }
}

/** The seed's reducer in a Redux store, counting the diffs where a count went down. */
class ReduxClient {
  constructor(engine) {
    this.store = createStore(PresenceReducer)
    this.store.dispatch(setPresence(JSON.parse(engine.listJson(TOPIC))))
    this.dips = 0
    this.diffs = 0
  }

  get state() {
    return this.store.getState().toJS()
  }

  deliver(payload) {
    const before = this.state
    this.diffs += 1
    this.store.dispatch(presenceDiff(payload))
    const after = this.state
    if (after.viewers.count < before.viewers.count || after.users.count < before.users.count) this.dips += 1
  }
}

/**
 * Runs the same reloads against `engines` (one client each) and polls them together;
 * returns how many reloads came back with another meta.
 */
function reloads(seed, format, engines, clients, changeChance) {
  const random = makeRandom(seed)
  const present = new Map() // conn -> {key, meta}
  let nextConn = 1
  const join = (key, meta) => {
    const conn = nextConn++
    for (const e of engines) e.track(TOPIC, conn, key, meta)
    present.set(conn, { key, meta })
  }
  for (const key of ['alice', 'bob', 'carol', 'dave']) join(key, { device: 'phone' })
  join('alice', { device: 'laptop' })
  for (let i = 0; i < 6; i++) join(null, { device: 'phone' })
  const poll = () => {
    engines.forEach((e, i) => {
      for (const entry of e.pollDiff()) {
        assert.equal(entry.topic, TOPIC)
        clients[i].deliver(entry.payload)
      }
      const list = JSON.parse(e.listJson(TOPIC))
      assert.deepEqual(format === 'phoenix' ? plain(clients[i].state) : clients[i].state, list, `seed ${seed}: client against list()`)
    })
  }
  poll()
  for (const c of clients) {
    c.diffs = 0
  }

  let changedMetas = 0
  const coming = [] // reloads in flight: {key, meta, polls}
  for (let started = 0; started < RELOADS || coming.length > 0; ) {
    if (started < RELOADS && random.chance(0.5)) {
      const conns = [...present.keys()]
      const conn = conns[random.int(conns.length)]
      const { key, meta } = present.get(conn)
      for (const e of engines) e.untrack(TOPIC, conn)
      present.delete(conn)
      const changed = random.chance(changeChance)
      changedMetas += changed ? 1 : 0
      // The page reloads: back after 0 to 3 polls, as the same user (a viewer as a new
      // anonymous connection), with the meta it had or a new one.
      coming.push({ key, meta: changed ? { device: meta.device, reloaded: started } : meta, polls: random.int(4) })
      started += 1
    }
    for (let i = coming.length - 1; i >= 0; i--) {
      if (coming[i].polls === 0) {
        join(coming[i].key, coming[i].meta)
        coming.splice(i, 1)
      }
    }
    poll()
    for (const c of coming) c.polls -= 1
  }
  return changedMetas
}

for (const seed of SEEDS) {
  test(`phoenix.js, seed ${seed}: a reload within the grace never takes a key off the list`, (t) => {
    const graced = new Engine({ format: 'phoenix', leaveGraceMs: LONG })
    const plainEngine = new Engine({ format: 'phoenix' })
    const clients = [new PhoenixClient(graced), new PhoenixClient(plainEngine)]
    const changed = reloads(seed, 'phoenix', [graced, plainEngine], clients, 0.2)
    t.diagnostic(
      `${RELOADS} reloads (${changed} with another meta): with the grace ${clients[0].diffs} diffs ` +
        `(${clients[0].plainJoins} plain joins), ${clients[0].keysGone} keys gone; without it ${clients[1].diffs} diffs, ${clients[1].keysGone} keys gone`,
    )
    assert.equal(clients[0].keysGone, 0)
    // The diffs left come from changed metas: a reload back with another meta is an
    // update of a meta the clients hold (a join with phx_ref_prev naming the leave), or,
    // when it took back a presence that joined since the last poll, a plain join of its
    // meta. A meta never leaves without a join replacing it.
    assert.equal(clients[0].plainLeaves, 0, 'every meta that leaves is replaced by an update')
    assert.ok(clients[0].diffs < clients[1].diffs / 4)
    assert.ok(clients[1].keysGone > 0, 'without the grace the clients see reloads')
    graced.close()
    plainEngine.close()

    // Back with the metas they had: not one diff.
    const again = new Engine({ format: 'phoenix', leaveGraceMs: LONG })
    const client = new PhoenixClient(again)
    reloads(seed, 'phoenix', [again], [client], 0)
    assert.equal(client.diffs, 0)
    again.close()
  })

  test(`the seed's reducer, seed ${seed}: a reload within the grace never makes a count dip`, (t) => {
    const graced = new Engine({ format: 'counts', leaveGraceMs: LONG })
    const plainEngine = new Engine({ format: 'counts' })
    const clients = [new ReduxClient(graced), new ReduxClient(plainEngine)]
    reloads(seed, 'counts', [graced, plainEngine], clients, 0.2)
    t.diagnostic(
      `${RELOADS} reloads: with the grace ${clients[0].diffs} diffs, ${clients[0].dips} dips; ` +
        `without it ${clients[1].diffs} diffs, ${clients[1].dips} dips`,
    )
    assert.equal(clients[0].diffs, 0, 'not one diff')
    assert.ok(clients[1].dips > 0, 'without the grace the counts dip')
    graced.close()
    plainEngine.close()
  })
}

test('a leave that no rejoin follows reaches both clients when its window ends', async () => {
  for (const format of ['phoenix', 'counts']) {
    const engine = new Engine({ format, leaveGraceMs: 100 })
    engine.track(TOPIC, 1, 'alice', { device: 'phone' })
    engine.track(TOPIC, 2, null)
    engine.pollDiff()
    const client = format === 'phoenix' ? new PhoenixClient(engine) : new ReduxClient(engine)
    engine.untrack(TOPIC, 1)
    assert.deepEqual(engine.pollDiff(), [], `${format}: held`)
    await new Promise((resolve) => setTimeout(resolve, 150))
    const batch = engine.pollDiff()
    assert.equal(batch.length, 1, `${format}: the leave once due`)
    client.deliver(batch[0].payload)
    const list = JSON.parse(engine.listJson(TOPIC))
    assert.deepEqual(format === 'phoenix' ? plain(client.state) : client.state, list)
    if (format === 'phoenix') assert.equal(client.keysGone, 1)
    else assert.equal(client.dips, 1)
    engine.close()
  }
})
