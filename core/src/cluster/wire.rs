//! The replication message format: a compact binary body followed by an HMAC-SHA256 tag.
//!
//! ```text
//! "PE" version:u8 kind:u8 format:u8 node:str incarnation:u64le seq:varint body... tag:[u8;32]
//! str = varint length + UTF-8 bytes; every count is a varint checked against the bytes left
//! ```
//!
//! Decoding never trusts a length: each count is bounded by what remains of the message,
//! so a message can never make the decoder allocate more than a small multiple of its size.

use crate::codec::{put_str, put_varint, Reader};
pub use crate::format::{Change, Format, WireEntry};
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

#[cfg(test)]
impl TopicChange {
    /// A counts-format change that adds the users hashed as `added` and leaves the topic
    /// with `connections`: what the cluster's unit tests stage and merge.
    pub(crate) fn users(topic: &str, connections: u64, added: &[u64]) -> TopicChange {
        TopicChange {
            topic: topic.into(),
            change: Change::Counts {
                viewers: 0,
                connections,
                added: added.to_vec(),
                removed: Vec::new(),
            },
        }
    }
}

/// A decoded, authenticated message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The sender's format: topic changes are of this format.
    pub format: Format,
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
    out.push(msg.format.wire_id());
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
    Reader::new(body).message().ok_or(Reject::Malformed)
}

/// HMAC-SHA256 of `data` under `key`.
pub fn mac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

fn put_topics(out: &mut Vec<u8>, topics: &[TopicChange]) {
    put_varint(out, topics.len() as u64);
    for t in topics {
        put_topic(out, t);
    }
}

fn put_topic(out: &mut Vec<u8>, t: &TopicChange) {
    put_str(out, &t.topic);
    t.change.encode(out);
}

/// The message-level reads of the cursor.
trait ReadMessage {
    fn message(self) -> Option<Message>;
    fn part(&mut self) -> Option<(u32, bool)>;
    fn topics(&mut self, format: Format) -> Option<Vec<TopicChange>>;
}

impl ReadMessage for Reader<'_> {
    fn message(mut self) -> Option<Message> {
        if self.take(2)? != MAGIC || self.u8()? != VERSION {
            return None;
        }
        let kind = self.u8()?;
        let format = Format::from_wire_id(self.u8()?)?;
        let node = self.str()?;
        let incarnation = self.u64()?;
        let seq = self.varint()?;
        let body = match kind {
            KIND_DELTA => Body::Delta(self.topics(format)?),
            KIND_HEARTBEAT => Body::Heartbeat,
            KIND_SNAPSHOT => {
                let (part, last) = self.part()?;
                Body::Snapshot {
                    part,
                    last,
                    topics: self.topics(format)?,
                }
            }
            KIND_SNAPSHOT_FOR => {
                let target = self.str()?;
                let (part, last) = self.part()?;
                Body::SnapshotFor {
                    target,
                    part,
                    last,
                    topics: self.topics(format)?,
                }
            }
            KIND_REQUEST => Body::SnapshotRequest {
                target: self.str()?,
            },
            KIND_LEAVE => Body::Leave,
            _ => return None,
        };
        (self.left() == 0).then_some(Message {
            format,
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

    fn topics(&mut self, format: Format) -> Option<Vec<TopicChange>> {
        let n = self.count(3)?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            let topic = self.str()?;
            let change = Change::decode(format, self)?;
            topics.push(TopicChange { topic, change });
        }
        Some(topics)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(format: Format) -> Message {
        let change = if format == Format::Phoenix {
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
            format,
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
        let mut msgs = vec![sample(Format::Counts), sample(Format::Phoenix)];
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
                ..sample(Format::Counts)
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
        let bytes = encode(&sample(Format::Counts), secret);
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
        let good = encode(&sample(Format::Phoenix), secret);
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
