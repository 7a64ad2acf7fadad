// Random track/untrack/update/untrackConn sequences against an engine, with a model of
// what is tracked, and the scenarios the compatibility tests must cover:
//  - the same key on several connections of a topic (few keys, many connections);
//  - updates of a presence's meta (phoenix: phx_ref_prev);
//  - a key that leaves and comes back within one poll window ("bounce");
//  - a presence that joins and leaves within one poll window ("flicker");
//  - untrackConn of a connection present in several topics;
//  - a topic emptied (dropped by the engine after the poll) and later tracked again.
//
// Every operation is valid (the engine accepts it); invalid calls are the Node and Python
// packages' own tests' business.

export const TOPICS = ['video:1', 'video:2', 'video:3', 'video:4']
export const CONNS = Array.from({ length: 24 }, (_, i) => i + 1)
export const KEYS = ['alice', 'bob', 'carol', 'dave', 'erin']
const STATUSES = ['online', 'away', 'busy']

export class Workload {
  constructor(engine, random) {
    this.engine = engine
    this.random = random
    /** topic -> Map(conn -> {key, meta}) */
    this.model = new Map(TOPICS.map((t) => [t, new Map()]))
    this.ops = 0
    this.byKind = {}
    this.metaCounter = 0
  }

  presences() {
    let n = 0
    for (const m of this.model.values()) n += m.size
    return n
  }

  meta() {
    this.metaCounter += 1
    return { status: this.random.pick(STATUSES), n: this.metaCounter }
  }

  randomKey() {
    return this.random.chance(0.3) ? null : this.random.pick(KEYS)
  }

  count(kind) {
    this.byKind[kind] = (this.byKind[kind] || 0) + 1
  }

  /** A tracked (topic, conn) pair chosen at random, or null when nothing is tracked. */
  pickTracked() {
    const nonEmpty = TOPICS.filter((t) => this.model.get(t).size > 0)
    if (nonEmpty.length === 0) return null
    const topic = this.random.pick(nonEmpty)
    const conn = this.random.pick([...this.model.get(topic).keys()])
    return { topic, conn, ...this.model.get(topic).get(conn) }
  }

  /** A topic and a conn not tracked there, or null when every pair is taken. */
  pickFree(topic = this.random.pick(TOPICS)) {
    const free = CONNS.filter((c) => !this.model.get(topic).has(c))
    if (free.length === 0) return null
    return { topic, conn: this.random.pick(free) }
  }

  track(topic, conn, key, meta) {
    this.engine.track(topic, conn, key, meta)
    this.model.get(topic).set(conn, { key, meta })
    this.ops += 1
  }

  untrack(topic, conn) {
    this.engine.untrack(topic, conn)
    this.model.get(topic).delete(conn)
    this.ops += 1
  }

  update(topic, conn, meta) {
    this.engine.update(topic, conn, meta)
    this.model.get(topic).get(conn).meta = meta
    this.ops += 1
  }

  untrackConn(conn) {
    const removed = this.engine.untrackConn(conn)
    let expected = 0
    for (const m of this.model.values()) if (m.delete(conn)) expected += 1
    if (removed !== expected) {
      throw new Error(`untrackConn(${conn}) removed ${removed} presences, the model had ${expected}`)
    }
    if (expected >= 2) this.count('untrackConn of a conn in several topics')
    this.ops += 1
  }

  /** One random operation (a scenario may take two engine calls). */
  step() {
    const crowded = this.presences() > 55
    const kind = this.random.weighted({
      track: crowded ? 15 : 40,
      untrack: crowded ? 30 : 14,
      update: 14,
      untrackConn: crowded ? 14 : 6,
      bounce: 6,
      flicker: 5,
      emptyTopic: 1,
    })
    switch (kind) {
      case 'track': {
        const free = this.pickFree()
        if (!free) return this.untrackConn(this.random.pick(CONNS))
        this.track(free.topic, free.conn, this.randomKey(), this.meta())
        break
      }
      case 'untrack':
      case 'update': {
        const p = this.pickTracked()
        if (!p) return this.stepTrack()
        if (kind === 'untrack') this.untrack(p.topic, p.conn)
        else this.update(p.topic, p.conn, this.meta())
        break
      }
      case 'untrackConn': {
        const withPresences = CONNS.filter((c) => TOPICS.some((t) => this.model.get(t).has(c)))
        if (withPresences.length === 0) return this.stepTrack()
        this.untrackConn(this.random.pick(withPresences))
        break
      }
      case 'bounce': {
        // A logged-in key leaves and comes back within the window: on the same conn, or
        // on another conn of the same topic (a reconnect with a new socket).
        const p = this.pickTracked()
        if (!p || p.key === null) return this.stepTrack()
        this.untrack(p.topic, p.conn)
        const other = this.random.chance(0.5) ? this.pickFree(p.topic) : null
        this.track(p.topic, other ? other.conn : p.conn, p.key, this.meta())
        break
      }
      case 'flicker': {
        const free = this.pickFree()
        if (!free) return this.stepTrack()
        this.track(free.topic, free.conn, this.randomKey(), this.meta())
        this.untrack(free.topic, free.conn)
        break
      }
      case 'emptyTopic': {
        // Everybody leaves one topic, so that the engine drops it after the next poll.
        const topic = this.random.pick(TOPICS)
        for (const conn of [...this.model.get(topic).keys()]) this.untrack(topic, conn)
        break
      }
    }
    this.count(kind)
  }

  stepTrack() {
    const free = this.pickFree()
    if (!free) return this.untrackConn(this.random.pick(CONNS))
    this.track(free.topic, free.conn, this.randomKey(), this.meta())
    this.count('track')
  }

  /** The counts the model expects for a topic. */
  expectedCounts(topic) {
    const m = this.model.get(topic)
    let viewers = 0
    const keys = new Set()
    for (const { key } of m.values()) {
      if (key === null) viewers += 1
      else keys.add(key)
    }
    return { viewers, users: keys.size, connections: m.size }
  }
}
