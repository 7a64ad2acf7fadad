//! The replication message format: a compact binary body followed by an HMAC-SHA256 tag.
//!
//! ```text
//! "PE" version:u8 kind:u8 format:u8 node:str incarnation:u64le seq:varint body... tag:[u8;32]
//! str = varint length + UTF-8 bytes; every count is a varint checked against the bytes left
//! ```
//!
//! Decoding never trusts a length: each count is bounded by what remains of the message,
//! so a message can never make the decoder allocate more than a small multiple of its size.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const MAGIC: &[u8; 2] = b"PE";
/// The format's version: every node of a cluster must speak the same.
const VERSION: u8 = 2;
/// Length of the HMAC-SHA256 tag that ends every message.
const TAG_LEN: usize = 32;

/// What a message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Changes of the sender's topics since its previous message.
    Delta(Vec<TopicChange>),
    /// Nothing changed; the sender is alive.
    Heartbeat,
    /// One part of a full snapshot of the sender's state. Parts have consecutive seqs;
    /// the one with `last` ends it, and topics the snapshot did not name are empty.
    Snapshot {
        part: u32,
        last: bool,
        topics: Vec<TopicChange>,
    },
    /// Asks `target` (empty: every node) for a snapshot.
    SnapshotRequest { target: String },
    /// One part of a full snapshot sent to `target` alone, in answer to its request. The
    /// message's seq is that of the sender's last message before it (not a new one, so
    /// that other nodes see no gap): the snapshot is the sender's state as of that seq.
    SnapshotFor {
        target: String,
        part: u32,
        last: bool,
        topics: Vec<TopicChange>,
    },
    /// The sender is shutting down cleanly: drop it now.
    Leave,
}

/// One topic in a delta or a snapshot part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicChange {
    pub topic: String,
    pub change: Change,
}

/// The sender's contribution to a topic, in the engine's format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Counts format: absolute viewer and connection counts on the sender, and the keyed
    /// hashes of users that appeared on it (`added`) or left it (`removed`). In a
    /// snapshot, `added` is the full set and `removed` is empty.
    Counts {
        viewers: u64,
        connections: u64,
        added: Vec<u64>,
        removed: Vec<u64>,
    },
    /// Phoenix format: entries that joined (in a snapshot: all entries) and refs that left.
    Phoenix {
        joins: Vec<WireEntry>,
        leaves: Vec<u64>,
    },
}

/// A listed presence on the wire (phoenix format only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireEntry {
    pub phx_ref: u64,
    pub prev_ref: u64,
    pub key: Option<String>,
    pub meta: String,
}

/// A decoded, authenticated message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub phoenix: bool,
    pub node: String,
    pub incarnation: u64,
    pub seq: u64,
    pub body: Body,
}

/// Why a message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Larger than the configured maximum.
    Oversized,
    /// The tag does not match: forged, tampered, or signed with another secret.
    Unauthenticated,
    /// Authentic but not decodable (or of another format or version).
    Malformed,
}

const KIND_DELTA: u8 = 1;
const KIND_HEARTBEAT: u8 = 2;
const KIND_SNAPSHOT: u8 = 3;
const KIND_REQUEST: u8 = 4;
const KIND_LEAVE: u8 = 5;
const KIND_SNAPSHOT_FOR: u8 = 6;

/// Encodes and signs a message.
pub fn encode(msg: &Message, secret: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(match msg.body {
        Body::Delta(_) => KIND_DELTA,
        Body::Heartbeat => KIND_HEARTBEAT,
        Body::Snapshot { .. } => KIND_SNAPSHOT,
        Body::SnapshotRequest { .. } => KIND_REQUEST,
        Body::Leave => KIND_LEAVE,
        Body::SnapshotFor { .. } => KIND_SNAPSHOT_FOR,
    });
    out.push(u8::from(msg.phoenix));
    put_str(&mut out, &msg.node);
    out.extend_from_slice(&msg.incarnation.to_le_bytes());
    put_varint(&mut out, msg.seq);
    match &msg.body {
        Body::Delta(topics) => put_topics(&mut out, topics),
        Body::Snapshot { part, last, topics } => {
            put_varint(&mut out, u64::from(*part));
            out.push(u8::from(*last));
            put_topics(&mut out, topics);
        }
        Body::SnapshotRequest { target } => put_str(&mut out, target),
        Body::SnapshotFor {
            target,
            part,
            last,
            topics,
        } => {
            put_str(&mut out, target);
            put_varint(&mut out, u64::from(*part));
            out.push(u8::from(*last));
            put_topics(&mut out, topics);
        }
        Body::Heartbeat | Body::Leave => {}
    }
    let tag = mac(secret, &out);
    out.extend_from_slice(&tag);
    out
}

/// The encoded size of one topic change, to split deltas below the message limit.
pub fn topic_size(t: &TopicChange) -> usize {
    let mut v = Vec::new();
    put_topic(&mut v, t);
    v.len()
}

/// The size of a message with no topics, plus the tag.
pub fn overhead(node: &str) -> usize {
    2 + 1 + 1 + 1 + 10 + node.len() + 8 + 10 + 10 + 1 + 10 + TAG_LEN
}

/// Checks size and tag, then decodes.
pub fn decode(bytes: &[u8], secret: &[u8], max_bytes: usize) -> Result<Message, Reject> {
    if bytes.len() > max_bytes {
        return Err(Reject::Oversized);
    }
    if bytes.len() < TAG_LEN {
        return Err(Reject::Unauthenticated);
    }
    let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
    let mut check =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
    check.update(body);
    check
        .verify_slice(tag)
        .map_err(|_| Reject::Unauthenticated)?;
    Reader {
        bytes: body,
        pos: 0,
    }
    .message()
    .ok_or(Reject::Malformed)
}

/// HMAC-SHA256 of `data` under `key`.
pub fn mac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_topics(out: &mut Vec<u8>, topics: &[TopicChange]) {
    put_varint(out, topics.len() as u64);
    for t in topics {
        put_topic(out, t);
    }
}

fn put_topic(out: &mut Vec<u8>, t: &TopicChange) {
    put_str(out, &t.topic);
    match &t.change {
        Change::Counts {
            viewers,
            connections,
            added,
            removed,
        } => {
            put_varint(out, *viewers);
            put_varint(out, *connections);
            for set in [added, removed] {
                put_varint(out, set.len() as u64);
                for h in set {
                    out.extend_from_slice(&h.to_le_bytes());
                }
            }
        }
        Change::Phoenix { joins, leaves } => {
            put_varint(out, joins.len() as u64);
            for e in joins {
                out.extend_from_slice(&e.phx_ref.to_le_bytes());
                out.extend_from_slice(&e.prev_ref.to_le_bytes());
                match &e.key {
                    Some(k) => {
                        out.push(1);
                        put_str(out, k);
                    }
                    None => out.push(0),
                }
                put_str(out, &e.meta);
            }
            put_varint(out, leaves.len() as u64);
            for r in leaves {
                out.extend_from_slice(&r.to_le_bytes());
            }
        }
    }
}

/// A bounds-checked cursor; every method returns `None` past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.bytes.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            n |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    /// A count of items each at least `min_size` bytes long: bounded by the bytes left.
    fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n.checked_mul(min_size)? <= self.left()).then_some(n)
    }

    fn str(&mut self) -> Option<String> {
        let n = self.count(1)?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }

    fn message(mut self) -> Option<Message> {
        if self.take(2)? != MAGIC || self.u8()? != VERSION {
            return None;
        }
        let kind = self.u8()?;
        let phoenix = match self.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let node = self.str()?;
        let incarnation = self.u64()?;
        let seq = self.varint()?;
        let body = match kind {
            KIND_DELTA => Body::Delta(self.topics(phoenix)?),
            KIND_HEARTBEAT => Body::Heartbeat,
            KIND_SNAPSHOT => {
                let (part, last) = self.part()?;
                Body::Snapshot {
                    part,
                    last,
                    topics: self.topics(phoenix)?,
                }
            }
            KIND_SNAPSHOT_FOR => {
                let target = self.str()?;
                let (part, last) = self.part()?;
                Body::SnapshotFor {
                    target,
                    part,
                    last,
                    topics: self.topics(phoenix)?,
                }
            }
            KIND_REQUEST => Body::SnapshotRequest {
                target: self.str()?,
            },
            KIND_LEAVE => Body::Leave,
            _ => return None,
        };
        (self.left() == 0).then_some(Message {
            phoenix,
            node,
            incarnation,
            seq,
            body,
        })
    }

    /// A snapshot part's number and whether it is the last.
    fn part(&mut self) -> Option<(u32, bool)> {
        let part = u32::try_from(self.varint()?).ok()?;
        let last = match self.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        Some((part, last))
    }

    fn topics(&mut self, phoenix: bool) -> Option<Vec<TopicChange>> {
        let n = self.count(3)?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            let topic = self.str()?;
            let change = if phoenix {
                let joins = self.count(18)?;
                let mut j = Vec::with_capacity(joins);
                for _ in 0..joins {
                    let phx_ref = self.u64()?;
                    let prev_ref = self.u64()?;
                    let key = match self.u8()? {
                        0 => None,
                        1 => Some(self.str()?),
                        _ => return None,
                    };
                    j.push(WireEntry {
                        phx_ref,
                        prev_ref,
                        key,
                        meta: self.str()?,
                    });
                }
                let leaves = self.count(8)?;
                let l = (0..leaves)
                    .map(|_| self.u64())
                    .collect::<Option<Vec<u64>>>()?;
                Change::Phoenix {
                    joins: j,
                    leaves: l,
                }
            } else {
                let viewers = self.varint()?;
                let connections = self.varint()?;
                let mut sets = [Vec::new(), Vec::new()];
                for set in &mut sets {
                    let n = self.count(8)?;
                    *set = (0..n).map(|_| self.u64()).collect::<Option<Vec<u64>>>()?;
                }
                let [added, removed] = sets;
                Change::Counts {
                    viewers,
                    connections,
                    added,
                    removed,
                }
            };
            topics.push(TopicChange { topic, change });
        }
        Some(topics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(phoenix: bool) -> Message {
        let change = if phoenix {
            Change::Phoenix {
                joins: vec![
                    WireEntry {
                        phx_ref: 7,
                        prev_ref: 0,
                        key: Some("alice".into()),
                        meta: "{\"a\":1}".into(),
                    },
                    WireEntry {
                        phx_ref: 9,
                        prev_ref: 3,
                        key: None,
                        meta: "{}".into(),
                    },
                ],
                leaves: vec![3, 4],
            }
        } else {
            Change::Counts {
                viewers: 3,
                connections: 300,
                added: vec![1, u64::MAX],
                removed: vec![42],
            }
        };
        Message {
            phoenix,
            node: "node-a".into(),
            incarnation: 0x0102_0304_0506_0708,
            seq: 300,
            body: Body::Delta(vec![TopicChange {
                topic: "video:1".into(),
                change,
            }]),
        }
    }

    #[test]
    fn every_kind_round_trips() {
        let secret = b"0123456789abcdef";
        let mut msgs = vec![sample(false), sample(true)];
        for body in [
            Body::Heartbeat,
            Body::Leave,
            Body::SnapshotRequest {
                target: "node-b".into(),
            },
            Body::Snapshot {
                part: 2,
                last: true,
                topics: vec![],
            },
            Body::SnapshotFor {
                target: "node-b".into(),
                part: 1,
                last: false,
                topics: vec![],
            },
        ] {
            msgs.push(Message {
                body,
                ..sample(false)
            });
        }
        for m in msgs {
            let bytes = encode(&m, secret);
            assert_eq!(decode(&bytes, secret, 1 << 20), Ok(m));
        }
    }

    #[test]
    fn forged_tampered_truncated_and_oversized_messages_are_refused() {
        let secret = b"0123456789abcdef";
        let bytes = encode(&sample(false), secret);
        assert_eq!(
            decode(&bytes, b"another secret!!", 1 << 20),
            Err(Reject::Unauthenticated)
        );
        for i in [0, 5, bytes.len() / 2, bytes.len() - 1] {
            let mut t = bytes.clone();
            t[i] ^= 1;
            assert_eq!(
                decode(&t, secret, 1 << 20),
                Err(Reject::Unauthenticated),
                "bit flip at {i}"
            );
        }
        for n in [0, 1, TAG_LEN, bytes.len() - 1] {
            assert_eq!(
                decode(&bytes[..n], secret, 1 << 20),
                Err(Reject::Unauthenticated),
                "truncated to {n}"
            );
        }
        assert_eq!(
            decode(&bytes, secret, bytes.len() - 1),
            Err(Reject::Oversized)
        );
    }

    #[test]
    fn authentic_garbage_is_malformed_not_a_panic() {
        let secret = b"k";
        let good = encode(&sample(true), secret);
        let body = &good[..good.len() - TAG_LEN];
        // Every truncation and every single-byte change of an authentic body, re-signed.
        for n in 0..body.len() {
            let mut b = body[..n].to_vec();
            b.extend_from_slice(&mac(secret, &body[..n]));
            assert_eq!(
                decode(&b, secret, 1 << 20),
                Err(Reject::Malformed),
                "truncated at {n}"
            );
        }
        for i in 0..body.len() {
            for v in [0u8, 0x7f, 0x80, 0xff] {
                let mut b = body.to_vec();
                b[i] = v;
                let tag = mac(secret, &b);
                b.extend_from_slice(&tag);
                let _ = decode(&b, secret, 1 << 20);
            }
        }
    }
}
