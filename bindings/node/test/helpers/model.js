'use strict';

// A plain JS reference model of the engine, for the randomized tests, plus the client
// side of both wire formats: the seed's counts reducer and phoenix.js syncDiff.

/** mulberry32: a small seeded PRNG, so a failing sequence can be replayed from its seed. */
function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (n) => Math.floor(next() * n);
  next.pick = (arr) => arr[Math.floor(next() * arr.length)];
  next.chance = (p) => next() < p;
  return next;
}

/**
 * What the engine should hold. Conns are keyed by BigInt so that 5 and 5n are one conn,
 * as they are in C. Each track gets a fresh instance id and each track/update a fresh
 * version, so the model knows exactly which presences clients have seen.
 */
class Model {
  constructor(format, viewersKey = 'viewers') {
    this.format = format;
    this.viewersKey = viewersKey;
    this.topics = new Map(); // topic -> {live: Map<conn, P>, published: Map<conn, P>, publishedCounts, seq}
    this.conns = new Map(); // conn -> Set<topic>
    this.nextVersion = 1;
  }

  #topic(name) {
    let t = this.topics.get(name);
    if (!t) {
      t = { live: new Map(), published: new Map(), publishedCounts: zero(), seq: 0 };
      this.topics.set(name, t);
    }
    return t;
  }

  has(topic, conn) {
    const t = this.topics.get(topic);
    return Boolean(t && t.live.has(BigInt(conn)));
  }

  /** A new version number, to put in the next meta. */
  version() {
    return this.nextVersion++;
  }

  track(topic, conn, key, meta, version) {
    const c = BigInt(conn);
    const t = this.#topic(topic);
    if (t.live.has(c)) return false;
    t.live.set(c, { key, meta, version, instance: version, updates: 0 });
    if (!this.conns.has(c)) this.conns.set(c, new Set());
    this.conns.get(c).add(topic);
    return true;
  }

  untrack(topic, conn) {
    const c = BigInt(conn);
    const t = this.topics.get(topic);
    if (!t || !t.live.has(c)) return false;
    t.live.delete(c);
    const set = this.conns.get(c);
    set.delete(topic);
    if (set.size === 0) this.conns.delete(c);
    return true;
  }

  untrackConn(conn) {
    const c = BigInt(conn);
    const topics = [...(this.conns.get(c) || [])];
    for (const topic of topics) this.untrack(topic, c);
    return topics.length;
  }

  update(topic, conn, meta, version) {
    const c = BigInt(conn);
    const t = this.topics.get(topic);
    if (!t || !t.live.has(c)) return false;
    const p = t.live.get(c);
    // Counts format keeps no meta: an update changes nothing clients can see.
    if (this.format === 'phoenix') t.live.set(c, { ...p, meta, version, updates: p.updates + 1 });
    return true;
  }

  counts(topic) {
    const t = this.topics.get(topic);
    if (!t) return zero();
    let viewers = 0;
    const users = new Set();
    for (const p of t.live.values()) {
      if (p.key === null) viewers++;
      else users.add(p.key);
    }
    return { viewers, users: users.size, connections: t.live.size };
  }

  /** The topics the next poll must report: those whose clients' view changed. */
  changed() {
    const out = [];
    for (const [name, t] of this.topics) {
      if (this.format === 'counts') {
        // Clients see viewers and users only: connections alone (a second tab) send nothing.
        if (!sameView(this.counts(name), t.publishedCounts)) out.push(name);
      } else if (!samePresences(t.live, t.published)) {
        out.push(name);
      }
    }
    return out.sort();
  }

  /** After a poll: the live state becomes the published one; empty topics are dropped. */
  polled(changedTopics) {
    for (const name of changedTopics) this.topics.get(name).seq += 1;
    for (const [name, t] of [...this.topics]) {
      t.published = new Map(t.live);
      t.publishedCounts = this.counts(name);
      if (t.live.size === 0) this.topics.delete(name);
    }
  }

  seq(topic) {
    const t = this.topics.get(topic);
    return t ? t.seq : 0;
  }

  /** The published state in the counts format. */
  countsState(topic) {
    const t = this.topics.get(topic);
    const c = t ? t.publishedCounts : zero();
    return { viewers: { count: c.viewers }, users: { count: c.users } };
  }

  /** The published presences of a topic: conn -> {key, meta, version, instance}. */
  published(topic) {
    const t = this.topics.get(topic);
    return t ? t.published : new Map();
  }
}

function zero() {
  return { viewers: 0, users: 0, connections: 0 };
}

function sameView(a, b) {
  return a.viewers === b.viewers && a.users === b.users;
}

function samePresences(a, b) {
  if (a.size !== b.size) return false;
  for (const [conn, p] of a) {
    const q = b.get(conn);
    if (!q || q.version !== p.version) return false;
  }
  return true;
}

/** The seed's reducer, as DESIGN.md states it: previous state + joins - leaves, per group. */
function applyCountsDiff(state, diff) {
  const out = {};
  for (const group of ['viewers', 'users']) {
    out[group] = { count: state[group].count + diff.joins[group].count - diff.leaves[group].count };
  }
  return out;
}

/** phoenix.js Presence.syncDiff: joins first (replacing by phx_ref), then leaves by phx_ref. */
function syncDiff(state, diff) {
  const next = JSON.parse(JSON.stringify(state));
  for (const [key, joined] of Object.entries(diff.joins)) {
    const current = next[key];
    next[key] = JSON.parse(JSON.stringify(joined));
    if (current) {
      const joinedRefs = next[key].metas.map((m) => m.phx_ref);
      const keep = current.metas.filter((m) => !joinedRefs.includes(m.phx_ref));
      next[key].metas.unshift(...keep);
    }
  }
  for (const [key, left] of Object.entries(diff.leaves)) {
    const current = next[key];
    if (!current) continue;
    const refs = left.metas.map((m) => m.phx_ref);
    current.metas = current.metas.filter((m) => !refs.includes(m.phx_ref));
    if (current.metas.length === 0) delete next[key];
  }
  return next;
}

module.exports = { rng, Model, applyCountsDiff, syncDiff, zero };
