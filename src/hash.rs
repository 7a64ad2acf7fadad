//! Hashing: a keyed SipHash-2-4 for user keys, and cheap hashers for integer maps.
//!
//! User keys are never stored in counts format: a topic remembers the keyed hash of each
//! key instead. The hash key is random per engine, so the stored values reveal nothing
//! and cannot be steered into collisions by clients. (A later cluster mode derives the
//! hash key from the shared secret, so that equal users hash equally on every node.)

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

/// SipHash-2-4 of `data` under `key` (the reference algorithm of Aumasson and Bernstein).
pub fn siphash24(key: SipKey, data: &[u8]) -> u64 {
    let mut v0 = key.0 ^ 0x736f_6d65_7073_6575;
    let mut v1 = key.1 ^ 0x646f_7261_6e64_6f6d;
    let mut v2 = key.0 ^ 0x6c79_6765_6e65_7261;
    let mut v3 = key.1 ^ 0x7465_6462_7974_6573;
    #[inline(always)]
    fn round(v0: &mut u64, v1: &mut u64, v2: &mut u64, v3: &mut u64) {
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    }
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let m = u64::from_le_bytes(chunk.try_into().expect("8-byte chunk"));
        v3 ^= m;
        round(&mut v0, &mut v1, &mut v2, &mut v3);
        round(&mut v0, &mut v1, &mut v2, &mut v3);
        v0 ^= m;
    }
    let rest = chunks.remainder();
    let mut last = (data.len() as u64) << 56;
    for (i, b) in rest.iter().enumerate() {
        last |= u64::from(*b) << (8 * i);
    }
    v3 ^= last;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    v0 ^= last;
    v2 ^= 0xff;
    for _ in 0..4 {
        round(&mut v0, &mut v1, &mut v2, &mut v3);
    }
    v0 ^ v1 ^ v2 ^ v3
}

/// Eight random bytes from the kernel (`getrandom(2)`), falling back to the clock and
/// the address space layout only if the kernel refuses, which it does not on Linux ≥ 3.17.
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    // SAFETY: the buffer is valid for 8 writable bytes.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n == 8 {
        return u64::from_le_bytes(buf);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let local = 0u8;
    mix64(t ^ (&local as *const u8 as u64))
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

    #[test]
    fn random_values_differ() {
        assert_ne!(random_u64(), random_u64());
    }
}
