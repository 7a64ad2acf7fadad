//! Hashing: a keyed SipHash-2-4 for user keys, and cheap hashers for integer maps.
//!
//! User keys are never stored in counts format: a topic remembers the keyed hash of each
//! key instead. The hash key is random per engine, so the stored values reveal nothing
//! and cannot be steered into collisions by clients. Cluster mode derives the hash key from
//! the shared secret, so that equal users hash equally on every node, and hashes a key
//! together with its topic, so that equal users hash differently in different topics.

use siphasher::sip::{SipHasher13, SipHasher24};
use std::hash::{BuildHasherDefault, Hasher};

/// A 128-bit SipHash key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SipKey(pub u64, pub u64);

impl SipKey {
    /// A fresh key from the operating system's random source.
    pub fn random() -> SipKey {
        SipKey(random_u64(), random_u64())
    }
}

/// SipHash-2-4 of `data` under `key`.
pub fn siphash24(key: SipKey, data: &[u8]) -> u64 {
    SipHasher24::new_with_keys(key.0, key.1).hash(data)
}

/// SipHash-2-4 of `data` as used in `topic`: the input is the topic's length, the topic,
/// then `data`, so that no two (topic, data) pairs give the same input.
pub fn siphash24_in(key: SipKey, topic: &[u8], data: &[u8]) -> u64 {
    let mut h = SipHasher24::new_with_keys(key.0, key.1);
    h.write(&(topic.len() as u64).to_le_bytes());
    h.write(topic);
    h.write(data);
    h.finish()
}

/// SipHash-1-3 of `data` under `key`: the variant Rust's `HashMap` uses by default, for
/// names clients may choose (topics), hashed at every call: keyed, so that nobody can
/// steer names into one bucket, at half the rounds of SipHash-2-4.
pub fn siphash13(key: SipKey, data: &[u8]) -> u64 {
    SipHasher13::new_with_keys(key.0, key.1).hash(data)
}

/// Eight random bytes from the operating system. A hash key guessed from the clock would
/// let clients steer keys into collisions, so there is no weaker fallback: a system that
/// cannot give random bytes (none that Rust's standard library supports) stops here.
pub fn random_u64() -> u64 {
    getrandom::u64().expect("the operating system's random source failed")
}

/// A strong 64-bit finalizer (from SplitMix64); spreads host-chosen integers over a table.
#[inline(always)]
pub fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Hasher for maps keyed by connection ids. Connection ids are chosen by the host, not by
/// clients, so a fast mixer is enough; SipHash would double the cost of a track.
#[derive(Default, Clone, Copy)]
pub struct ConnHasher(u64);

impl Hasher for ConnHasher {
    fn finish(&self) -> u64 {
        mix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// Hasher for maps keyed by values that are already keyed SipHash outputs: they are
/// uniformly spread and secret, so hashing them again would only cost time.
#[derive(Default, Clone, Copy)]
pub struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The engine's hash maps and sets: hashbrown's, the tables behind std's `HashMap`,
/// used directly because they report the size of their allocation (`allocation_size`),
/// which `stats().bytes` adds up.
pub(crate) use hashbrown::{HashMap, HashSet};

/// `BuildHasher` for connection-keyed maps.
pub type ConnBuild = BuildHasherDefault<ConnHasher>;
/// `BuildHasher` for maps keyed by keyed-hash values.
pub type PrehashedBuild = BuildHasherDefault<PrehashedHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The first entries of the reference test vector (`vectors.h` of the SipHash paper's
    /// code): key 00..0f, message 00..(n-1).
    #[test]
    fn matches_reference_vectors() {
        let key = SipKey(0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        let expected: [u64; 4] = [
            0x726f_db47_dd0e_0e31,
            0x74f8_39c5_93dc_67fd,
            0x0d6c_8009_d9a9_4f5a,
            0x8567_6696_d7fb_7e2d,
        ];
        for (n, want) in expected.iter().enumerate() {
            let msg: Vec<u8> = (0..n as u8).collect();
            assert_eq!(siphash24(key, &msg), *want, "length {n}");
        }
        let msg: Vec<u8> = (0..15u8).collect();
        assert_eq!(siphash24(key, &msg), 0xa129_ca61_49be_45e5);
        let msg: Vec<u8> = (0..63u8).collect();
        assert_eq!(siphash24(key, &msg), 0x958a_324c_eb06_4572);
    }

    /// SipHash-1-3 agrees with the standard library's (`DefaultHasher` is SipHash-1-3
    /// under the zero key).
    #[test]
    fn siphash13_matches_std() {
        use std::hash::Hasher;
        for n in 0..40u8 {
            let msg: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            h.write(&msg);
            assert_eq!(siphash13(SipKey(0, 0), &msg), h.finish(), "length {n}");
        }
    }

    #[test]
    fn topic_scoped_hashes_differ_by_topic_and_never_confuse_the_boundary() {
        let key = SipKey(1, 2);
        let alice = |t: &str| siphash24_in(key, t.as_bytes(), b"alice");
        assert_eq!(alice("room:1"), alice("room:1"));
        assert_ne!(alice("room:1"), alice("room:2"));
        assert_ne!(
            siphash24_in(key, b"ab", b"c"),
            siphash24_in(key, b"a", b"bc")
        );
        let long = "t".repeat(1000);
        assert_ne!(alice(&long), alice(&long[1..]), "past the stack buffer");
        let mut input = 4u64.to_le_bytes().to_vec();
        input.extend_from_slice(b"roomalice");
        assert_eq!(siphash24_in(key, b"room", b"alice"), siphash24(key, &input));
    }

    #[test]
    fn random_values_differ() {
        assert_ne!(random_u64(), random_u64());
    }
}
