//! Cluster mode: several nodes share presence over a pub/sub bus they already have.
//!
//! Each node publishes what changed on it since its last tick — per topic, its absolute
//! viewer and connection counts and the keyed hashes of users that appeared or left
//! (counts format), or the entries themselves (phoenix format) — and applies what the
//! others publish as their parts of each topic. Reads stay local. Every message carries
//! the sender's node name, incarnation and sequence number and an HMAC over the shared
//! secret; a gap in a peer's sequence makes this node ask it for a snapshot, sent to this
//! node alone, and a peer silent for `down_after_ms` is dropped with all its presences.
//! Silence counts only while this node can hear the bus: during an outage of its own link
//! (or a pause of its own) the peers' presences are kept, stale, for `stale_after_ms`.

mod apply;
mod assemble;
mod decode;
mod node;
mod outgoing;
mod peers;
#[cfg(feature = "redis")]
pub(crate) mod redis_link;
pub mod wire;

pub(crate) use node::Cluster;

use crate::hash::SipKey;

/// Counters of one node's replication traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// This node's name.
    pub node: String,
    /// This node's incarnation: random-tailed and increasing across restarts.
    pub incarnation: u64,
    /// Other nodes currently held (live, or stale while the link is down).
    pub nodes: u64,
    /// Nodes held from before this node's Redis link went down or stopped answering, kept
    /// until it is back (or `stale_after_ms` has passed); 0 while the link is up.
    pub stale_nodes: u64,
    /// Whether this node can hear the bus: false while its Redis link is connecting, down
    /// or unresponsive; always true for a host's own bus.
    pub link_up: bool,
    /// Messages returned by `cluster_tick` (and `cluster_leave`).
    pub messages_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Messages passed to `cluster_ingest`, this node's own echoes included.
    pub messages_received: u64,
    /// Their bytes.
    pub bytes_received: u64,
    /// Refused: the HMAC did not match (forged, tampered, truncated, another secret).
    pub rejected_unauthenticated: u64,
    /// Refused: authentic but undecodable, of the other format, or over a bound (a sender
    /// over this node's limits is also dropped).
    pub rejected_malformed: u64,
    /// Refused: larger than `max_message_bytes`.
    pub rejected_oversized: u64,
    /// Refused: a sequence number or incarnation already seen (a replay or a duplicate).
    pub rejected_replayed: u64,
    /// Snapshots this node sent (periodic, first, or asked for).
    pub snapshots_sent: u64,
    /// Snapshot requests this node sent after seeing a gap.
    pub snapshot_requests_sent: u64,
    /// Nodes dropped for silence, or after announcing their departure.
    pub nodes_dropped: u64,
}

/// The SipHash key for user hashes: the same on every node of a cluster, secret to it.
pub(crate) fn user_hash_key(secret: &[u8]) -> SipKey {
    let tag = wire::mac(secret, b"presence-engine user hash key v1");
    SipKey(
        u64::from_le_bytes(tag[..8].try_into().expect("8 bytes")),
        u64::from_le_bytes(tag[8..16].try_into().expect("8 bytes")),
    )
}
