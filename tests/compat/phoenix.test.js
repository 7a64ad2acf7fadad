// phoenix format, judged by the official `phoenix` npm client.
//
// Long random sequences of track / untrack / update / untrackConn over four topics are
// run against the engine (through the Node package); the engine is polled at random
// points, and every polled presence_diff payload is delivered to clients of its topic:
//  - one client per topic that joined at the start;
//  - clients that join mid-way: they start from `engine.state(topic)` (the list as of
//    the last poll, with its seq), possibly with changes still unpolled, and apply only
//    the diffs that come after;
//  - phoenix.js `Presence` instances whose presence_state arrives late, after some of the
//    diffs that follow it (buffered as pending diffs, then replayed).
// After every poll, every client's state must equal the engine's `list(topic)` for every
// topic, exactly (each key's metas in the same order, too), `list` must hold exactly the model's presences,
// the envelope's counts must be the engine's counts, and seqs must follow each other. A
// join's phx_ref_prev must name a meta the clients hold, leaving in the same diff.
//
// COMPAT_SEED=<n> replays one seed; COMPAT_OPS=<n> changes the operations per seed.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isDeepStrictEqual } from 'node:util'
import { Engine } from 'presence-engine'
import { ChannelClient, StaticClient, plain } from './lib/phoenix-clients.js'
import { makeRandom, seeds } from './lib/random.js'
import { TOPICS, Workload } from './lib/workload.js'

const OPS_PER_SEED = Number(process.env.COMPAT_OPS || 6000)
const SEEDS = seeds([11, 22, 33, 44])
const VIEWERS_KEY = 'viewers'

/** The list without refs, as {key: sorted meta texts}, to compare with the model. */
function withoutRefs(state) {
  const out = {}
  for (const [key, { metas }] of Object.entries(state)) {
    out[key] = metas
      .map(({ phx_ref: _ref, phx_ref_prev: _prev, ...meta }) => JSON.stringify(meta))
      .sort()
  }
  return out
}

function modelList(workload, topic) {
  const out = {}
  for (const { key, meta } of workload.model.get(topic).values()) {
    const k = key === null ? VIEWERS_KEY : key
    ;(out[k] ||= []).push(JSON.stringify(meta))
  }
  for (const k of Object.keys(out)) out[k].sort()
  return out
}

function countsOf(state) {
  let viewers = 0
  let users = 0
  let connections = 0
  for (const [key, { metas }] of Object.entries(state)) {
    connections += metas.length
    if (key === VIEWERS_KEY) viewers += metas.length
    else users += 1
  }
  return { viewers, users, connections }
}

function run(seed, totals) {
  const random = makeRandom(seed)
  const engine = new Engine({ format: 'phoenix', viewersKey: VIEWERS_KEY })
  const workload = new Workload(engine, random)
  const cover = totals.cover
  const clients = new Map(TOPICS.map((t) => [t, [new StaticClient(`${t}/from-start`, '{}', 0, cover)]]))
  let lateId = 0
  let window = 0
  let sincePoll = 0
  const where = () => `seed ${seed}, after ${workload.ops} operations`

  const joinLate = (topic, channel) => {
    const { json, seq } = engine.state(topic)
    const name = `${topic}/late-${++lateId}`
    if (!isDeepStrictEqual(withoutRefs(JSON.parse(json)), modelList(workload, topic))) {
      cover['late joins with unpolled changes in their topic'] += 1
    }
    const list = clients.get(topic)
    list.push(channel ? new ChannelClient(name, json, seq, cover, 2 + random.int(4)) : new StaticClient(name, json, seq, cover))
    // A topic keeps its first client and its five latest ones.
    if (list.length > 6) list.splice(1, 1)
    cover[channel ? 'Presence instances joined mid-way' : 'static clients joined mid-way'] += 1
  }

  const poll = () => {
    // What every client of a topic holds now: the list as of the last poll.
    const before = new Map(TOPICS.map((t) => [t, engine.list(t)]))
    const batch = engine.pollDiff()
    totals.polls += 1
    if (batch.length === 0) cover['polls that returned nothing'] += 1
    assert.equal(new Set(batch.map((e) => e.topic)).size, batch.length, `${where()}: a topic twice in one poll`)
    for (const entry of batch) {
      const { topic, payload } = entry
      assert.deepEqual(Object.keys(payload).sort(), ['joins', 'leaves'], `${where()}: payload keys`)
      for (const [key, { metas }] of Object.entries(payload.joins)) {
        for (const meta of metas) {
          if (!('phx_ref_prev' in meta)) continue
          cover['joins with phx_ref_prev (updates)'] += 1
          // phx_ref_prev names the meta the clients saw: one of this key's metas in the
          // state they hold, leaving in this same diff (never a ref no client was sent).
          const prev = meta.phx_ref_prev
          assert.ok(
            before.get(topic)[key]?.metas.some((m) => m.phx_ref === prev),
            `${where()}: phx_ref_prev ${prev} of ${key} in ${topic} names a ref the clients never saw`,
          )
          assert.ok(
            payload.leaves[key]?.metas.some((m) => m.phx_ref === prev),
            `${where()}: phx_ref_prev ${prev} of ${key} in ${topic} does not leave in the same diff`,
          )
        }
        if (key in payload.leaves) cover['keys in joins and leaves of one diff'] += 1
      }
      assert.deepEqual(entry.counts, engine.counts(topic), `${where()}: envelope counts of ${topic}`)
      for (const client of clients.get(topic)) client.deliver(entry)
    }
    for (const list of clients.values()) for (const client of list) client.afterPoll()

    for (const topic of TOPICS) {
      const list = engine.list(topic)
      assert.deepEqual(withoutRefs(list), modelList(workload, topic), `${where()}: list(${topic}) against the model`)
      assert.deepEqual(countsOf(list), engine.counts(topic), `${where()}: counts(${topic}) against list`)
      assert.deepEqual(engine.counts(topic), workload.expectedCounts(topic), `${where()}: counts(${topic}) against the model`)
      const refs = Object.values(list).flatMap(({ metas }) => metas.map((m) => m.phx_ref))
      assert.equal(new Set(refs).size, refs.length, `${where()}: phx_refs unique in ${topic}`)
      if (Object.entries(list).some(([k, { metas }]) => k !== VIEWERS_KEY && metas.length >= 2)) {
        cover['polls with a key on several conns'] += 1
      }
      for (const client of clients.get(topic)) {
        if (!client.ready) continue
        assert.deepEqual(plain(client.state), list, `${where()}: client ${client.name} against list(${topic})`)
        totals.comparisons += 1
      }
    }
    sincePoll = 0
    window = random.chance(0.6) ? random.int(7) : random.chance(0.75) ? 7 + random.int(14) : 40
  }

  while (workload.ops < OPS_PER_SEED) {
    if (random.chance(0.03)) joinLate(random.pick(TOPICS), false)
    if (random.chance(0.015)) joinLate(random.pick(TOPICS), true)
    workload.step()
    sincePoll += 1
    if (sincePoll >= window) {
      poll()
      // Now and then a second poll at once: nothing changed, so nothing is reported.
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

test('the official phoenix client replays the engine into list() after every poll', (t) => {
  const started = performance.now()
  const totals = {
    ops: 0,
    polls: 0,
    comparisons: 0,
    byKind: {},
    cover: Object.fromEntries(
      [
        'joins with phx_ref_prev (updates)',
        'keys in joins and leaves of one diff',
        'polls with a key on several conns',
        'static clients joined mid-way',
        'Presence instances joined mid-way',
        'late joins with unpolled changes in their topic',
        'diffs buffered by Presence before its state',
        'seq restarts seen by a client (topic dropped, then back)',
        'polls that returned nothing',
      ].map((k) => [k, 0]),
    ),
  }
  for (const seed of SEEDS) run(seed, totals)

  t.diagnostic(
    `phoenix: ${totals.ops} random operations replayed (${SEEDS.length} seeds), ${totals.polls} polls, ` +
      `${totals.comparisons} client states compared with list(), in ${Math.round(performance.now() - started)} ms`,
  )
  t.diagnostic(`operations: ${JSON.stringify(totals.byKind)}`)
  t.diagnostic(`covered: ${JSON.stringify(totals.cover)}`)
  assert.ok(totals.ops >= OPS_PER_SEED * SEEDS.length)
  for (const kind of ['track', 'untrack', 'update', 'untrackConn', 'bounce', 'flicker', 'emptyTopic',
    'untrackConn of a conn in several topics']) {
    assert.ok(totals.byKind[kind] > 0, `the sequences never did: ${kind}`)
  }
  for (const [what, n] of Object.entries(totals.cover)) assert.ok(n > 0, `never covered: ${what}`)
})
