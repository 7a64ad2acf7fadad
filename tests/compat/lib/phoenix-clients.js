// Clients of the phoenix format, built only from the official `phoenix` npm package.
//
// - StaticClient: the lower-level static API, as an app that manages its own state uses
//   it: `Presence.syncState` on the presence_state, `Presence.syncDiff` on each diff.
// - ChannelClient: a `new Presence(channel)` instance, as phoenix.js apps use it, over a
//   minimal channel object (the two methods Presence calls: `on` and `joinRef`). Its
//   presence_state is delivered only a few polls after the diffs that follow it, so the
//   client buffers them (`pendingDiffs`) and replays them after the state, the path
//   Phoenix added for the join race (phoenix #2255).

import { Presence } from 'phoenix'

/** A plain copy of a phoenix state: the client builds null-prototype objects (phoenix
 * e84b8f6a2), which deepStrictEqual would tell apart from the engine's parsed JSON. Meta
 * order is kept: the engine lists a key's metas in the order the client ends up with. */
export function plain(state) {
  return JSON.parse(JSON.stringify(state))
}

class SeqTracker {
  /** `cover` counts what happened, by name (see phoenix.test.js). */
  constructor(name, seq, cover) {
    this.name = name
    this.seq = seq
    this.cover = cover
  }

  /** Checks a diff's seq: the next one, or 1 when the engine dropped the emptied topic and
   * it came back (`isEmpty` must then hold for the state the client has). */
  accept(seq, isEmpty) {
    if (seq === this.seq + 1) {
      this.seq = seq
      return
    }
    if (seq === 1 && isEmpty()) {
      this.seq = 1
      this.cover['seq restarts seen by a client (topic dropped, then back)'] += 1
      return
    }
    throw new Error(`${this.name}: got seq ${seq} after ${this.seq}`)
  }
}

export class StaticClient extends SeqTracker {
  constructor(name, stateJson, seq, cover) {
    super(name, seq, cover)
    this.state = Presence.syncState({}, JSON.parse(stateJson))
    this.ready = true
  }

  deliver({ seq, payload }) {
    this.accept(seq, () => Object.keys(this.state).length === 0)
    this.state = Presence.syncDiff(this.state, payload)
  }

  afterPoll() {}
}

class FakeChannel {
  constructor() {
    this.handlers = new Map()
    this.ref = null
  }

  on(event, callback) {
    this.handlers.set(event, callback)
  }

  joinRef() {
    return this.ref
  }

  emit(event, payload) {
    this.handlers.get(event)(payload)
  }
}

export class ChannelClient extends SeqTracker {
  constructor(name, stateJson, seq, cover, delayPolls) {
    super(name, seq, cover)
    this.channel = new FakeChannel()
    this.presence = new Presence(this.channel)
    this.syncs = 0
    this.presence.onSync(() => {
      this.syncs += 1
    })
    this.pendingState = JSON.parse(stateJson)
    this.delay = delayPolls
  }

  get ready() {
    return this.pendingState === null
  }

  get state() {
    return this.presence.state
  }

  deliver({ seq, payload }) {
    // Before its presence_state the client cannot tell; the comparison once the state is
    // delivered (and the buffered diffs replayed) judges the result.
    this.accept(seq, () => !this.ready || Object.keys(this.presence.state).length === 0)
    this.channel.emit('presence_diff', payload)
  }

  afterPoll() {
    if (this.pendingState === null) return
    this.delay -= 1
    if (this.delay > 0) return
    if (this.presence.pendingDiffs.length > 0) this.cover['diffs buffered by Presence before its state'] += 1
    this.channel.ref = '1'
    this.channel.emit('presence_state', this.pendingState)
    this.pendingState = null
    if (this.presence.pendingDiffs.length !== 0) throw new Error(`${this.name}: diffs still pending`)
  }
}
