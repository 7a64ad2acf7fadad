// A small seeded PRNG (mulberry32), so that a failing sequence can be replayed with
// COMPAT_SEED=<seed>.

export function makeRandom(seed) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    /** An integer in [0, n). */
    int: (n) => Math.floor(next() * n),
    /** True with probability p. */
    chance: (p) => next() < p,
    pick: (items) => items[Math.floor(next() * items.length)],
    /** A key of `weights` ({name: weight}), drawn in proportion to its weight. */
    weighted: (weights) => {
      const entries = Object.entries(weights)
      let r = next() * entries.reduce((sum, [, w]) => sum + w, 0)
      for (const [name, w] of entries) {
        r -= w
        if (r < 0) return name
      }
      return entries[entries.length - 1][0]
    },
  }
}

/** The seeds to run: COMPAT_SEED=n runs that one only. */
export function seeds(defaults) {
  const forced = process.env.COMPAT_SEED
  return forced ? [Number(forced)] : defaults
}
