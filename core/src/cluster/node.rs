//! One node's side of the protocol: what it publishes at each tick, and how it applies
//! (or refuses) what the others publish.
//!
//! Lock order: the node state, then one topic shard at a time. Local calls never take the
//! node state, so replication never blocks tracking for longer than one topic's update.

use super::apply::{drop_topic_part, merge};
use super::assemble::{stage, Staged, Staging};
use super::decode::{check_message, decode, refuse};
use super::outgoing::{collect, collect_snapshot, split};
use super::peers::{admit, Admission, Peer, Refusal};
use super::wire::{self, Body, Message, TopicChange};
use super::ClusterStats;
use crate::config::{ClusterConfig, Format};
use crate::error::Result;
use crate::shard::lock;
use crate::shared::Shared;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A peer that owes a snapshot is asked again after this many ticks.
const REQUEST_EVERY_TICKS: u32 = 3;

/// Tombstones kept per allowed node, so that a dropped node's old messages stay refused.
const TOMBSTONES_PER_NODE: usize = 4;

/// A message to publish, and to whom.
pub(crate) struct Outgoing {
    /// `None`: every node. Otherwise the only node that acts on it (others ignore it).
    // Read by the built-in Redis link only; own-bus hosts publish everything to everyone.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub to: Option<String>,
    pub bytes: Vec<u8>,
}

/// Cluster-mode state of an engine.
pub(crate) struct Cluster {
    cfg: ClusterConfig,
    state: Mutex<NodeState>,
}

struct NodeState {
    /// Sequence number of the last message this node sent.
    seq: u64,
    left: bool,
    /// A snapshot for every node is due at the next tick.
    snapshot_due: bool,
    last_snapshot: Instant,
    /// Nodes that asked for a snapshot: each gets one of its own at the next tick.
    snapshot_for: BTreeSet<String>,
    /// Up to when elapsed time has been counted (or not) as the peers' silence: the last
    /// tick or link change.
    accounted: Instant,
    /// Whether this node can hear the bus (its Redis link is up).
    link_up: bool,
    /// When the link went down, while it is down.
    down_since: Option<Instant>,
    peers: HashMap<String, Peer>,
    /// Nodes that left or were dropped: (incarnation, last seq), to refuse their replays.
    gone: HashMap<String, (u64, u64)>,
    next_id: u32,
    stats: ClusterStats,
}

impl Cluster {
    pub fn new(cfg: ClusterConfig) -> Cluster {
        let incarnation = fresh_incarnation(0);
        let stats = ClusterStats {
            node: cfg.node.clone(),
            incarnation,
            ..ClusterStats::default()
        };
        Cluster {
            cfg,
            state: Mutex::new(NodeState {
                seq: 0,
                left: false,
                snapshot_due: true,
                last_snapshot: Instant::now(),
                snapshot_for: BTreeSet::new(),
                accounted: Instant::now(),
                link_up: true,
                down_since: None,
                peers: HashMap::new(),
                gone: HashMap::new(),
                next_id: 1,
                stats,
            }),
        }
    }

    pub fn stats(&self) -> ClusterStats {
        let st = lock(&self.state);
        ClusterStats {
            nodes: st.peers.len() as u64,
            stale_nodes: if st.link_up { 0 } else { st.peers.len() as u64 },
            link_up: st.link_up,
            ..st.stats.clone()
        }
    }

    /// The departure message; afterwards ticks publish nothing.
    pub fn leave(&self) -> Vec<u8> {
        let mut st = lock(&self.state);
        st.left = true;
        // Nodes of any format read a message without topic changes (see `decode.rs`): it
        // carries the default format's byte, whatever this node's format.
        self.seal(&mut st, Body::Leave, Format::default())
    }

    /// Takes a node that left back into the cluster, as a new incarnation (peers refuse
    /// the old one's messages after its departure) that starts with a full snapshot.
    /// Does nothing for a node that has not left. Only the built-in link rejoins.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub fn rejoin(&self) {
        let mut st = lock(&self.state);
        if st.left {
            st.left = false;
            st.stats.incarnation = fresh_incarnation(st.stats.incarnation);
            st.seq = 0;
            st.snapshot_due = true;
        }
    }

    /// Drops silent peers, then returns this tick's messages.
    pub fn tick(&self, shared: &Shared) -> Result<Vec<Vec<u8>>> {
        let _section = shared.enter()?;
        Ok(self.tick_out(shared).into_iter().map(|o| o.bytes).collect())
    }

    /// Tells the node whether it can hear the bus. While it cannot, time does not count as
    /// the peers' silence, ticks publish nothing (changes wait in the outboxes, and the
    /// sequence has no gap to heal once the link is back), and peers are dropped only
    /// after `stale_after_ms`.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub fn set_link(&self, up: bool) {
        let mut st = lock(&self.state);
        if st.link_up == up {
            return;
        }
        let now = Instant::now();
        self.account(&mut st, now);
        st.link_up = up;
        st.down_since = if up { None } else { Some(now) };
    }

    /// Counts the time since the last accounting as the peers' silence only if this node
    /// could hear them: time spent with the link down, and all but one tick of a pause of
    /// this node (a suspended process, a frozen VM), moves their last contact forward.
    /// A pause shows as a tick (or a link change) much later than the one before: what
    /// the peers said meanwhile is still queued, unread, so the gap is not their silence.
    fn account(&self, st: &mut NodeState, now: Instant) {
        let elapsed = now.saturating_duration_since(st.accounted);
        let pause_after =
            Duration::from_millis((self.cfg.down_after_ms / 2).max(2 * self.cfg.tick_ms));
        let paused = elapsed > pause_after;
        let uncounted = if !st.link_up {
            elapsed
        } else if paused {
            elapsed.saturating_sub(Duration::from_millis(self.cfg.tick_ms))
        } else {
            Duration::ZERO
        };
        if !uncounted.is_zero() {
            for p in st.peers.values_mut() {
                p.last_heard = (p.last_heard + uncounted).min(now);
            }
        }
        st.accounted = now;
    }

    /// A tick with the destination of each message: `None` for every node, or the one node
    /// a snapshot is for.
    pub fn tick_out(&self, shared: &Shared) -> Vec<Outgoing> {
        let Ok(_section) = shared.enter() else {
            return Vec::new();
        };
        let mut st = lock(&self.state);
        if st.left {
            return Vec::new();
        }
        let now = Instant::now();
        self.account(&mut st, now);
        let down = Duration::from_millis(self.cfg.down_after_ms);
        let stale_after = self.cfg.stale_after_ms.max(self.cfg.down_after_ms);
        let outage_over = st
            .down_since
            .is_some_and(|t| now.saturating_duration_since(t) > Duration::from_millis(stale_after));
        let silent: Vec<String> = st
            .peers
            .iter()
            .filter(|(_, p)| outage_over || now.saturating_duration_since(p.last_heard) > down)
            .map(|(n, _)| n.clone())
            .collect();
        for name in silent {
            self.drop_peer(&mut st, shared, &name);
        }
        if !st.link_up {
            return Vec::new();
        }

        let format = shared.config.format;
        let mut out = Vec::new();
        let to_all = |bytes| Outgoing { to: None, bytes };
        let interval = Duration::from_millis(self.cfg.snapshot_interval_ms);
        // When most peers asked (after a bus restart, say), one broadcast costs the
        // publisher less than a copy for each, and the receivers about the same.
        let most_asked = st.snapshot_for.len() * 2 > st.peers.len().max(2);
        if st.snapshot_due || most_asked || now.duration_since(st.last_snapshot) >= interval {
            let parts = self.batches(collect_snapshot(shared), 0);
            let n = parts.len();
            for (i, topics) in parts.into_iter().enumerate() {
                let body = Body::Snapshot {
                    part: i as u32,
                    last: i + 1 == n,
                    topics,
                };
                out.push(to_all(self.seal(&mut st, body, format)));
            }
            st.snapshot_due = false;
            st.snapshot_for.clear();
            st.last_snapshot = now;
            st.stats.snapshots_sent += 1;
        } else {
            let (changes, state) = collect(shared, !st.snapshot_for.is_empty());
            // One message when idle: the heartbeat is the delta that says nothing changed.
            if changes.is_empty() {
                out.push(to_all(self.seal(&mut st, Body::Heartbeat, format)));
            } else {
                for topics in self.batches(changes, 0) {
                    out.push(to_all(self.seal(&mut st, Body::Delta(topics), format)));
                }
            }
            // Each node that asked gets the state as of the message just sealed, and no
            // other node pays for it.
            for target in std::mem::take(&mut st.snapshot_for) {
                let parts = self.batches(state.clone().unwrap_or_default(), target.len() + 10);
                let n = parts.len();
                for (i, topics) in parts.into_iter().enumerate() {
                    let body = Body::SnapshotFor {
                        target: target.clone(),
                        part: i as u32,
                        last: i + 1 == n,
                        topics,
                    };
                    let bytes = self.seal_again(&mut st, body, format);
                    out.push(Outgoing {
                        to: Some(target.clone()),
                        bytes,
                    });
                }
                st.stats.snapshots_sent += 1;
            }
        }

        // Ask peers we lost track of for a snapshot, at most once every few ticks each.
        let mut wanted = Vec::new();
        for (name, p) in st.peers.iter_mut().filter(|(_, p)| !p.in_sync) {
            if p.request_wait == 0 {
                p.request_wait = REQUEST_EVERY_TICKS;
                wanted.push(name.clone());
            } else {
                p.request_wait -= 1;
            }
        }
        for target in wanted {
            st.stats.snapshot_requests_sent += 1;
            out.push(to_all(self.seal(
                &mut st,
                Body::SnapshotRequest { target },
                format,
            )));
        }
        out
    }

    /// Asks every node for a snapshot and schedules this node's own: used after the
    /// transport reconnects, when messages may have been lost both ways.
    pub fn resync(&self) -> Vec<u8> {
        let mut st = lock(&self.state);
        st.snapshot_due = true;
        for p in st.peers.values_mut() {
            p.in_sync = false;
            p.request_wait = REQUEST_EVERY_TICKS;
        }
        st.stats.snapshot_requests_sent += 1;
        self.seal(
            &mut st,
            Body::SnapshotRequest {
                target: String::new(),
            },
            Format::default(),
        )
    }

    /// Applies one message from another node, or refuses it. A message is applied whole
    /// or refused whole: it is decoded and checked against this node's bounds, its sender
    /// admitted, a snapshot's parts assembled, and only then merged.
    pub fn ingest(&self, shared: &Shared, bytes: &[u8]) -> Result<()> {
        let _section = shared.enter()?;
        let mut st = lock(&self.state);
        st.stats.messages_received += 1;
        st.stats.bytes_received += bytes.len() as u64;
        let mut msg = decode(&self.cfg, &mut st.stats, bytes)?;
        if msg.node == self.cfg.node {
            // Our own message, echoed back by the bus.
            return Ok(());
        }
        // A snapshot for another node (a host's own bus delivers it everywhere).
        if matches!(&msg.body, Body::SnapshotFor { target, .. } if *target != self.cfg.node) {
            return Ok(());
        }
        if let Err(e) = check_message(shared, &mut msg) {
            return Err(refuse(&mut st.stats.rejected_malformed, e.message()));
        }
        match admit(&st.peers, &st.gone, self.cfg.max_nodes, &msg) {
            Err(Refusal::Replayed(why)) => {
                return Err(refuse(&mut st.stats.rejected_replayed, why));
            }
            Err(Refusal::TooManyNodes) => {
                return Err(refuse(&mut st.stats.rejected_malformed, "too many nodes"));
            }
            Ok(Admission::Restarted) => self.drop_peer(&mut st, shared, &msg.node),
            Ok(Admission::Known | Admission::New) => {}
        }
        st.gone.remove(&msg.node);
        let Message {
            node,
            incarnation,
            seq,
            body,
            ..
        } = msg;
        let mut peer = match st.peers.remove(&node) {
            Some(peer) => peer,
            None => {
                st.next_id += 1;
                Peer::new(st.next_id - 1, incarnation)
            }
        };
        let outcome = self.receive(&mut st, shared, &node, &mut peer, seq, body);
        st.peers.insert(node.clone(), peer);
        match outcome {
            Received::Applied => Ok(()),
            Received::Left => {
                self.drop_peer(&mut st, shared, &node);
                Ok(())
            }
            Received::Over(why) => {
                // This node cannot mirror the sender: showing part of it would show a
                // state it never had, so it goes whole, as if it had left.
                self.drop_peer(&mut st, shared, &node);
                Err(refuse(&mut st.stats.rejected_malformed, why))
            }
        }
    }

    /// Heap bytes of snapshots being received.
    pub fn staged_bytes(&self) -> usize {
        let st = lock(&self.state);
        st.peers
            .values()
            .filter_map(|p| p.staging.as_ref())
            .map(|s| std::mem::size_of::<Staging>() + s.bytes)
            .sum()
    }

    /// Takes a checked message of a known sender into account.
    fn receive(
        &self,
        st: &mut NodeState,
        shared: &Shared,
        node: &str,
        peer: &mut Peer,
        seq: u64,
        body: Body,
    ) -> Received {
        let addressed = matches!(body, Body::SnapshotFor { .. });
        peer.last_heard = Instant::now();
        let in_order = peer.in_sync && peer.last_seq.checked_add(1) == Some(seq);
        peer.last_seq = seq;
        if !matches!(body, Body::Snapshot { .. } | Body::SnapshotFor { .. }) {
            // A snapshot's parts come one after the other: anything else ends it unfinished.
            peer.staging = None;
        }
        match body {
            Body::Leave => return Received::Left,
            Body::Heartbeat => peer.in_sync = in_order,
            Body::SnapshotRequest { target } => {
                peer.in_sync = in_order;
                if target.is_empty() || target == self.cfg.node {
                    st.snapshot_for.insert(node.to_string());
                }
            }
            Body::Delta(topics) => {
                peer.in_sync = in_order;
                if in_order {
                    if let Err(why) = merge(shared, peer, topics, false) {
                        return Received::Over(why);
                    }
                }
            }
            Body::Snapshot { part, last, topics }
            | Body::SnapshotFor {
                part, last, topics, ..
            } => {
                let staged = stage(
                    &mut peer.staging,
                    &shared.config,
                    seq,
                    addressed,
                    part,
                    last,
                    topics,
                );
                let merged = match staged {
                    Ok(Staged::Partial) => Ok(()),
                    Ok(Staged::Gap) => {
                        peer.in_sync = false;
                        Ok(())
                    }
                    Ok(Staged::Whole(topics)) => {
                        merge(shared, peer, topics, true).map(|()| peer.in_sync = true)
                    }
                    Err(why) => Err(why),
                };
                if let Err(why) = merged {
                    peer.staging = None;
                    return Received::Over(why);
                }
            }
        }
        Received::Applied
    }

    /// Signs a message with the next sequence number.
    fn seal(&self, st: &mut NodeState, body: Body, format: Format) -> Vec<u8> {
        st.seq += 1;
        self.seal_again(st, body, format)
    }

    /// Signs a message with the sequence number of the last one: for messages to one node,
    /// which the others never see and so must not count.
    fn seal_again(&self, st: &mut NodeState, body: Body, format: Format) -> Vec<u8> {
        let msg = Message {
            format,
            node: self.cfg.node.clone(),
            incarnation: st.stats.incarnation,
            seq: st.seq,
            body,
        };
        let bytes = wire::encode(&msg, self.cfg.secret.as_bytes());
        st.stats.messages_sent += 1;
        st.stats.bytes_sent += bytes.len() as u64;
        bytes
    }

    /// Splits topic changes into message-sized groups, splitting a topic's own change
    /// when it alone is too large (a delta applies in pieces; a snapshot is merged back).
    /// The pieces of one topic go to different messages: a delta names a topic once.
    fn batches(&self, changes: Vec<TopicChange>, extra: usize) -> Vec<Vec<TopicChange>> {
        let budget = self.cfg.max_message_bytes - wire::overhead(&self.cfg.node) - extra;
        let mut out = vec![Vec::new()];
        let mut size = 0;
        for change in changes {
            for (i, piece) in split(change, budget).into_iter().enumerate() {
                let n = wire::topic_size(&piece);
                let current = out.last().expect("never empty");
                if (size + n > budget || i > 0) && !current.is_empty() {
                    out.push(Vec::new());
                    size = 0;
                }
                size += n;
                out.last_mut().expect("never empty").push(piece);
            }
        }
        out
    }

    /// Removes a peer and all its parts; its presences leave through the next poll.
    fn drop_peer(&self, st: &mut NodeState, shared: &Shared, name: &str) {
        let Some(mut peer) = st.peers.remove(name) else {
            return;
        };
        for topic in std::mem::take(&mut peer.topics) {
            drop_topic_part(shared, &mut peer, &topic);
        }
        if st.gone.len() >= self.cfg.max_nodes * TOMBSTONES_PER_NODE {
            if let Some(k) = st.gone.keys().next().cloned() {
                st.gone.remove(&k);
            }
        }
        st.gone
            .insert(name.to_owned(), (peer.incarnation, peer.last_seq));
        st.stats.nodes_dropped += 1;
    }
}

/// How a checked message was taken.
enum Received {
    Applied,
    /// The sender announced its departure.
    Left,
    /// Merging it would exceed this node's limits.
    Over(&'static str),
}

/// A new incarnation, larger than `after`: milliseconds since the epoch in the high bits,
/// so a restarted node's incarnation exceeds its last one and peers tell it from replays
/// of the old.
fn fresh_incarnation(after: u64) -> u64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    ((ms << 16) | (crate::hash::random_u64() & 0xffff)).max(after + 1)
}
