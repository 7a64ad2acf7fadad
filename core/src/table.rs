//! A compact open-addressing table for the big maps of the hot path: the connection
//! index (`shard::ConnShard`), each topic's user refcounts (`topic::Users`) and each
//! shard's topic index (`shard::TopicShard`).
//!
//! Why not `std::collections::HashMap`: at a million presences every lookup is a cache
//! miss, and hashbrown keeps its control bytes and its entries in different cache lines,
//! so one lookup costs two misses. Here a slot is `W` words holding the key and the value
//! together, found by linear probing from a home slot: one miss for most lookups, an
//! address known before the probe (so it can be prefetched while other work runs), no
//! tombstones (deletion shifts the run back), and memory that is exactly
//! `slots * 8 * W` bytes. Section 9 of bench/BENCHMARKS.md measures it against
//! `hashbrown::HashTable` holding the same slots.
//!
//! A slot whose last word is zero is empty. A table is at most three quarters full; it
//! grows by doubling (4, 8, 16, ...) or by halves (4, 6, 8, 12, 16, 24, ...), as its
//! `KeyHash` says, and a key's home slot is its hash scaled to the size (the high bits
//! choose: entries lie roughly in hash order, so a rehash writes the new table almost
//! sequentially).

use std::marker::PhantomData;

/// How a table turns a key (the slot's first word) into the hash its home comes from,
/// and how it grows.
pub trait KeyHash {
    /// Grow by halves (4, 6, 8, 12, ...) rather than by doubling (4, 8, 16, ...): less
    /// memory for more moves.
    const BY_HALVES: bool;
    fn hash(key: u64) -> u64;
}

/// Keys chosen by the host (connection ids): mixed, so that consecutive ids spread. The
/// connection index is the biggest table and grows on every new connection: it doubles,
/// which halves the moves (and the fresh pages) of its growth.
pub struct Mixed;

impl KeyHash for Mixed {
    const BY_HALVES: bool = false;

    #[inline(always)]
    fn hash(key: u64) -> u64 {
        crate::hash::mix64(key)
    }
}

/// Keys that are keyed SipHash outputs already: uniform and secret, used as they are.
pub(crate) struct Prehashed;

impl KeyHash for Prehashed {
    const BY_HALVES: bool = true;

    #[inline(always)]
    fn hash(key: u64) -> u64 {
        key
    }
}

/// Where a key is, or where it would go.
pub enum Probe {
    Found(usize),
    Vacant(usize),
}

/// A table of `W`-word slots; word 0 is the key, word `W - 1` is non-zero in a used slot.
pub struct Table<const W: usize, H> {
    slots: Box<[[u64; W]]>,
    len: usize,
    hash: PhantomData<H>,
}

impl<const W: usize, H> Default for Table<W, H> {
    fn default() -> Self {
        Table {
            slots: Box::default(),
            len: 0,
            hash: PhantomData,
        }
    }
}

/// The size after `n`: 4, 6, 8, 12, 16, 24, ... by halves, or 4, 8, 16, ... doubling.
fn next_size(n: usize, by_halves: bool) -> usize {
    match n {
        0 => 4,
        n if n.is_power_of_two() && by_halves => n + n / 2,
        n if n.is_power_of_two() => n * 2,
        n => n + n / 3,
    }
}

/// Whether `len` entries fit in `n` slots.
fn fits(len: usize, n: usize) -> bool {
    len * 4 <= n * 3
}

impl<const W: usize, H: KeyHash> Table<W, H> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes: every slot, used or not.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }

    #[inline(always)]
    fn home(&self, key: u64) -> usize {
        ((u128::from(H::hash(key)) * self.slots.len() as u128) >> 64) as usize
    }

    #[inline(always)]
    fn used(slot: &[u64; W]) -> bool {
        slot[W - 1] != 0
    }

    /// Starts loading the cache line where `key`'s probe begins; a hint, it changes nothing.
    #[inline(always)]
    pub fn prefetch(&self, key: u64) {
        if let Some(slot) = self.slots.get(self.home(key)) {
            prefetch((slot as *const [u64; W]).cast());
        }
    }

    /// Where `key` is, or the empty slot where it would go (the table must have one).
    #[inline]
    fn probe(&self, key: u64) -> Probe {
        let n = self.slots.len();
        let mut i = self.home(key);
        loop {
            let s = &self.slots[i];
            if !Self::used(s) {
                return Probe::Vacant(i);
            }
            if s[0] == key {
                return Probe::Found(i);
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    /// Where `key` is, or `Vacant` when it is not there.
    #[inline]
    pub fn find(&self, key: u64) -> Probe {
        if self.len == 0 {
            return Probe::Vacant(0);
        }
        self.probe(key)
    }

    /// The slot of `key`, if it is there.
    #[inline]
    pub fn get(&self, key: u64) -> Option<&[u64; W]> {
        if self.len == 0 {
            return None;
        }
        match self.probe(key) {
            Probe::Found(i) => Some(&self.slots[i]),
            Probe::Vacant(_) => None,
        }
    }

    /// Where `key` is or would go, after making room for one more entry: pass a vacant
    /// index to `insert_at` (before any other change) to add the key there.
    #[inline]
    pub fn entry(&mut self, key: u64) -> Probe {
        if !fits(self.len + 1, self.slots.len()) {
            self.resize(next_size(self.slots.len(), H::BY_HALVES));
        }
        self.probe(key)
    }

    /// Adds `slot` at the vacant index `i` that `find` returned for `slot[0]` (before any
    /// other change), growing the table first when it is full. Unlike `entry`, a lookup
    /// through `find` allocates nothing, so a caller that may still refuse the insert
    /// leaves the table as it was.
    #[inline]
    pub fn insert_vacant(&mut self, i: usize, slot: [u64; W]) {
        let full = !fits(self.len + 1, self.slots.len());
        if full {
            self.resize(next_size(self.slots.len(), H::BY_HALVES));
        }
        // `find` answers an empty table without probing: its index is only a guess there.
        let i = if full || self.len == 0 {
            match self.probe(slot[0]) {
                Probe::Vacant(i) => i,
                Probe::Found(_) => unreachable!("insert_vacant of a key that is present"),
            }
        } else {
            i
        };
        self.insert_at(i, slot);
    }

    /// Fills the vacant slot `i` that `entry` returned for `slot[0]`.
    #[inline]
    pub fn insert_at(&mut self, i: usize, slot: [u64; W]) {
        debug_assert!(Self::used(&slot) && !Self::used(&self.slots[i]));
        self.slots[i] = slot;
        self.len += 1;
    }

    /// The slot at a found index.
    #[inline]
    pub fn at(&self, i: usize) -> &[u64; W] {
        &self.slots[i]
    }

    /// The slot at a found index, to change its value (not its key).
    #[inline]
    pub fn at_mut(&mut self, i: usize) -> &mut [u64; W] {
        &mut self.slots[i]
    }

    /// Empties the found slot `i`, shifting back the entries whose probe ran over it so
    /// that every probe still ends at its key or at an empty slot. Returns what was there.
    pub fn remove_at(&mut self, i: usize) -> [u64; W] {
        let n = self.slots.len();
        let removed = self.slots[i];
        let mut hole = i;
        let mut j = i;
        loop {
            j += 1;
            if j == n {
                j = 0;
            }
            let s = self.slots[j];
            if !Self::used(&s) {
                break;
            }
            // The entry at j may fill the hole if its home is not in (hole, j].
            let dist = |from: usize| if j >= from { j - from } else { j + n - from };
            if dist(self.home(s[0])) >= dist(hole) {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = [0; W];
        self.len -= 1;
        removed
    }

    /// Removes `key`; returns its slot.
    pub fn remove(&mut self, key: u64) -> Option<[u64; W]> {
        if self.len == 0 {
            return None;
        }
        match self.probe(key) {
            Probe::Found(i) => Some(self.remove_at(i)),
            Probe::Vacant(_) => None,
        }
    }

    /// Tables never shrink by themselves: once fewer than one slot in eight is used, this
    /// moves the entries to a table at most half full (or frees it when empty). Tables of
    /// eight slots or less stay, so that one presence coming and going allocates nothing.
    pub fn shrink(&mut self) {
        if self.len * 8 < self.slots.len() && self.slots.len() > 8 {
            let mut n = 4;
            while self.len * 2 > n {
                n = next_size(n, H::BY_HALVES);
            }
            self.resize(if self.len == 0 { 0 } else { n });
        }
    }

    fn resize(&mut self, n: usize) {
        debug_assert!(fits(self.len, n));
        let mut slots = vec![[0u64; W]; n].into_boxed_slice();
        populate(&mut slots);
        let old = std::mem::replace(&mut self.slots, slots);
        for s in old.iter().filter(|s| Self::used(s)) {
            if let Probe::Vacant(i) = self.probe(s[0]) {
                self.slots[i] = *s;
            }
        }
    }

    /// Every used slot, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &[u64; W]> {
        self.slots.iter().filter(|s| Self::used(s))
    }
}

/// Gets a new table's pages backed now. A big table comes as fresh pages from the kernel,
/// zero already; left alone, a page would take a read fault at its first probe (mapping
/// the shared zero page), then a second, copy-on-write fault at its first insert. A write
/// to each page now makes that one fault.
pub fn populate<const W: usize>(slots: &mut [[u64; W]]) {
    for s in slots.iter_mut().step_by(4096 / (8 * W)) {
        s[W - 1] = std::hint::black_box(0);
    }
}

/// Asks the CPU to load the cache line of `p`. A hint: it never faults, whatever the
/// address (past the end of a table included), and changes nothing.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch has no architectural effect and does not dereference `p` in the
    // language's sense; it is valid for any address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Agrees with a HashMap through inserts, removes and shrinks, with keys that crowd
    /// into runs (a hash that maps many keys to few homes) as well as spread ones.
    #[test]
    fn behaves_like_a_map() {
        struct Crowded;
        impl KeyHash for Crowded {
            const BY_HALVES: bool = true;
            fn hash(key: u64) -> u64 {
                (key % 7) << 61
            }
        }
        fn run<H: KeyHash>() {
            let mut t: Table<2, H> = Table::default();
            let mut m: HashMap<u64, u64> = HashMap::new();
            let mut x = 12345u64;
            // Miri interprets every step: a few hundred over fewer keys still grow, wrap
            // and shrink tables.
            let (steps, keys) = if cfg!(miri) {
                (400, 64)
            } else {
                (20_000u64, 500)
            };
            for step in 0..steps {
                x = crate::hash::mix64(x + step);
                let k = x % keys;
                if x.is_multiple_of(3) {
                    assert_eq!(t.remove(k).map(|s| s[1]), m.remove(&k), "remove {k}");
                    t.shrink();
                } else {
                    let v = step + 1;
                    match t.entry(k) {
                        Probe::Found(i) => t.at_mut(i)[1] = v,
                        Probe::Vacant(i) => t.insert_at(i, [k, v]),
                    }
                    m.insert(k, v);
                }
                assert_eq!(t.len(), m.len());
                if step % 97 == 0 {
                    for k in 0..keys {
                        assert_eq!(t.get(k).map(|s| s[1]), m.get(&k).copied(), "get {k}");
                    }
                    assert_eq!(t.iter().count(), m.len());
                }
            }
            for k in 0..keys {
                assert_eq!(t.remove(k).map(|s| s[1]), m.remove(&k));
                t.shrink();
            }
            assert!(t.is_empty());
            assert!(
                t.heap_bytes() <= 8 * 16,
                "an emptied table keeps at most 8 slots"
            );
        }
        /// Every key's home is the last slot: every run wraps around the end.
        struct Last;
        impl KeyHash for Last {
            const BY_HALVES: bool = false;
            fn hash(key: u64) -> u64 {
                u64::MAX - key % 3
            }
        }
        run::<Mixed>();
        run::<Prehashed>();
        run::<Crowded>();
        run::<Last>();
    }

    /// A lookup with `find` allocates nothing; `insert_vacant` grows the table when the
    /// insert needs room, and places the key where `get` finds it.
    #[test]
    fn find_then_insert_vacant_grows_only_on_insert() {
        let mut t: Table<2, Mixed> = Table::default();
        let mut k = 1;
        for _ in 0..3 {
            // Fill the table up to the point where one more key needs a bigger one.
            while fits(t.len() + 1, t.heap_bytes() / 16) {
                let Probe::Vacant(i) = t.find(k) else {
                    panic!("{k} is new")
                };
                t.insert_vacant(i, [k, k]);
                k += 1;
            }
            let bytes = t.heap_bytes();
            let Probe::Vacant(i) = t.find(k) else {
                panic!("{k} is new")
            };
            assert_eq!(t.heap_bytes(), bytes, "a lookup allocates nothing");
            t.insert_vacant(i, [k, k]);
            assert!(t.heap_bytes() > bytes, "the insert made room");
            k += 1;
            for j in 1..k {
                assert_eq!(t.get(j), Some(&[j, j]));
            }
        }
        // An emptied table keeps its slots: a key still goes to its own home.
        for j in 1..k {
            t.remove(j);
        }
        assert!(t.heap_bytes() > 0 && t.is_empty());
        for j in [k, k + 1, u64::MAX] {
            let Probe::Vacant(i) = t.find(j) else {
                panic!("{j} is new")
            };
            t.insert_vacant(i, [j, 1]);
            assert_eq!(t.get(j), Some(&[j, 1]));
        }
    }

    #[test]
    fn grows_and_shrinks() {
        /// Mixed keys, grown by halves.
        struct Spread;
        impl KeyHash for Spread {
            const BY_HALVES: bool = true;
            fn hash(key: u64) -> u64 {
                crate::hash::mix64(key)
            }
        }
        // Miri interprets every insert: a tenth of the keys still goes through ten sizes.
        const KEYS: u64 = if cfg!(miri) { 100 } else { 1000 };
        /// The sizes a table passes through up to KEYS entries.
        fn upto(all: &[usize]) -> Vec<usize> {
            let last = all.iter().position(|&n| fits(KEYS as usize, n)).unwrap();
            all[..=last].to_vec()
        }
        fn sizes<H: KeyHash>() -> Vec<usize> {
            let mut t: Table<2, H> = Table::default();
            assert_eq!(t.heap_bytes(), 0);
            let mut sizes = vec![];
            for k in 1..=KEYS {
                assert!(matches!(t.entry(k), Probe::Vacant(_)));
                if let Probe::Vacant(i) = t.entry(k) {
                    t.insert_at(i, [k, k]);
                }
                let n = t.heap_bytes() / 16;
                if sizes.last() != Some(&n) {
                    sizes.push(n);
                }
            }
            assert!(
                matches!(t.entry(5), Probe::Found(_)),
                "a second insert finds the key"
            );
            for k in 1..=KEYS {
                t.remove(k);
                t.shrink();
                assert!(t.len() * 8 >= t.heap_bytes() / 16 || t.heap_bytes() <= 8 * 16);
            }
            assert!(t.heap_bytes() <= 8 * 16, "small tables stay");
            sizes
        }
        assert_eq!(
            sizes::<Spread>(),
            upto(&[4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536])
        );
        assert_eq!(
            sizes::<Mixed>(),
            upto(&[4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048])
        );
    }
}
