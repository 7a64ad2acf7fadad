// The Phoenix envelope, judged by the official `phoenix` npm client: every message the
// engine renders with `envelope: 'phoenix'` (pollReady, stateMessage) is decoded by
// phoenix.js's own V2 `Serializer`, the one its `Socket` decodes every frame with, and the
// decoded frames alone drive `Presence.syncState` / `Presence.syncDiff` clients. After
// every poll each client must equal the engine's `list(topic)`.
//
// A frame must decode to what Phoenix itself pushes: diffs as broadcasts (join_ref and ref
// null, event "presence_diff"), the state as a push to the joining channel (its join_ref,
// ref null, event "presence_state"), the payload being the engine's payload.

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Engine } from 'presence-engine'
import { Presence, Serializer } from 'phoenix'
import { plain } from './lib/phoenix-clients.js'
import { makeRandom, seeds } from './lib/random.js'
import { TOPICS, Workload } from './lib/workload.js'

const OPS_PER_SEED = Number(process.env.COMPAT_OPS || 3000)

/** What phoenix.js's Socket hands its channels for one text frame. */
function decode(frame) {
  let message
  Serializer.decode(frame, (m) => {
    message = m
  })
  return message
}

for (const seed of seeds([5, 6, 7])) {
  test(`phoenix frames rendered by the engine decode with phoenix.js's Serializer (seed ${seed})`, () => {
    const engine = new Engine({ format: 'phoenix' })
    const random = makeRandom(seed)
    const w = new Workload(engine, random)
    const clients = new Map(TOPICS.map((t) => [t, {}]))
    let frames = 0
    let joins = 0
    while (w.ops < OPS_PER_SEED) {
      w.step()
      if (random.int(8) !== 0) continue
      for (const d of engine.pollReady({ envelope: 'phoenix' })) {
        const m = decode(d.message)
        assert.deepEqual(
          { join_ref: m.join_ref, ref: m.ref, topic: m.topic, event: m.event },
          { join_ref: null, ref: null, topic: d.topic, event: 'presence_diff' }
        )
        assert.deepEqual(m.payload, JSON.parse(d.payloadJson))
        clients.set(d.topic, Presence.syncDiff(clients.get(d.topic), m.payload))
        frames++
      }
      // A client joining now: the state frame carries its channel's join_ref.
      const topic = random.pick(TOPICS)
      const joinRef = String(++joins)
      const { message } = engine.stateMessage(topic, { envelope: 'phoenix', joinRef })
      const s = decode(message)
      assert.deepEqual(
        { join_ref: s.join_ref, ref: s.ref, topic: s.topic, event: s.event },
        { join_ref: joinRef, ref: null, topic, event: 'presence_state' }
      )
      assert.deepEqual(plain(Presence.syncState({}, s.payload)), engine.list(topic))
      for (const t of TOPICS) assert.deepEqual(plain(clients.get(t)), engine.list(t), `${t} after ${w.ops} ops`)
    }
    assert.ok(frames > 100, `only ${frames} diff frames were checked`)
    engine.close()
  })
}
