//! One node's side of the protocol: what it publishes at each tick, and how it applies
//! (or refuses) what the others publish.
//!
//! Lock order: the node state, then one topic shard at a time. Local calls never take the
//! node state, so replication never blocks tracking for longer than one topic's update.

use super::wire::{self, Body, Change, Message, Reject, TopicChange, WireEntry};
use super::ClusterStats;
use crate::config::{ClusterConfig, Format};
use crate::error::{Error, ErrorKind, Result};
use crate::shard::lock;
use crate::shared::Shared;
use crate::topic::Arrival;
use crate::topic::{Entry, Topic};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// What this node knows of another.
struct Peer {
    /// Short id used in topics' remote parts; never reused.
    id: u32,
    incarnation: u64,
    last_seq: u64,
    /// True while every message since the last applied snapshot arrived in order.
    in_sync: bool,
    last_heard: Instant,
    /// Ticks to wait before asking this peer for a snapshot again.
    request_wait: u32,
    staging: Option<Staging>,
    /// Topics where this peer has a part.
    topics: HashSet<String>,
    /// Users and entries this peer holds over all its parts, bounded by `max_presences`.
    held: usize,
}

/// A snapshot being received part by part. It lives until its last part, or until the
/// sender sends anything else, and is bounded by this node's `max_presences` (its
/// `items`) and `max_topics`.
#[derive(Default)]
struct Staging {
    next_seq: u64,
    next_part: u32,
    /// The presences the staged topics hold (see `weight`).
    items: usize,
    /// Their heap bytes, counted in the engine's `stats().bytes`.
    bytes: usize,
    topics: HashMap<String, Change>,
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
        self.seal(&mut st, Body::Leave, false)
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

        let phoenix = shared.config.format == Format::Phoenix;
        let mut out = Vec::new();
        let to_all = |bytes| Outgoing { to: None, bytes };
        let interval = Duration::from_millis(self.cfg.snapshot_interval_ms);
        // When most peers asked (after a bus restart, say), one broadcast costs the
        // publisher less than a copy for each, and the receivers about the same.
        let most_asked = st.snapshot_for.len() * 2 > st.peers.len().max(2);
        if st.snapshot_due || most_asked || now.duration_since(st.last_snapshot) >= interval {
            let parts = self.batches(collect_snapshot(shared, phoenix), 0);
            let n = parts.len();
            for (i, topics) in parts.into_iter().enumerate() {
                let body = Body::Snapshot {
                    part: i as u32,
                    last: i + 1 == n,
                    topics,
                };
                out.push(to_all(self.seal(&mut st, body, phoenix)));
            }
            st.snapshot_due = false;
            st.snapshot_for.clear();
            st.last_snapshot = now;
            st.stats.snapshots_sent += 1;
        } else {
            let (changes, state) = collect(shared, phoenix, !st.snapshot_for.is_empty());
            // One message when idle: the heartbeat is the delta that says nothing changed.
            if changes.is_empty() {
                out.push(to_all(self.seal(&mut st, Body::Heartbeat, phoenix)));
            } else {
                for topics in self.batches(changes, 0) {
                    out.push(to_all(self.seal(&mut st, Body::Delta(topics), phoenix)));
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
                    let bytes = self.seal_again(&mut st, body, phoenix);
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
                phoenix,
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
            false,
        )
    }

    /// Applies one message from another node, or refuses it. A message is applied whole
    /// or refused whole: it is decoded, checked against this node's bounds, then merged.
    pub fn ingest(&self, shared: &Shared, bytes: &[u8]) -> Result<()> {
        let _section = shared.enter()?;
        let mut st = lock(&self.state);
        st.stats.messages_received += 1;
        st.stats.bytes_received += bytes.len() as u64;
        let mut msg = self.decode(&mut st, bytes)?;
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
        self.admit_sender(&mut st, shared, &msg)?;
        let Message {
            node, seq, body, ..
        } = msg;
        let mut peer = st.peers.remove(&node).expect("admitted above");
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

    /// Checks size and tag, then decodes; counts a refusal.
    fn decode(&self, st: &mut NodeState, bytes: &[u8]) -> Result<Message> {
        wire::decode(
            bytes,
            self.cfg.secret.as_bytes(),
            self.cfg.max_message_bytes,
        )
        .map_err(|r| match r {
            Reject::Oversized => refuse(&mut st.stats.rejected_oversized, "message is too large"),
            Reject::Unauthenticated => refuse(
                &mut st.stats.rejected_unauthenticated,
                "message failed authentication",
            ),
            Reject::Malformed => refuse(&mut st.stats.rejected_malformed, "message is malformed"),
        })
    }

    /// Refuses replays and messages of departed incarnations, makes room for a restarted
    /// node's new incarnation, and knows the sender afterwards.
    fn admit_sender(&self, st: &mut NodeState, shared: &Shared, msg: &Message) -> Result<()> {
        let addressed = matches!(msg.body, Body::SnapshotFor { .. });
        if let Some(&(inc, seq)) = st.gone.get(&msg.node) {
            if msg.incarnation < inc || (msg.incarnation == inc && msg.seq <= seq) {
                return Err(refuse(
                    &mut st.stats.rejected_replayed,
                    "message of a node that left",
                ));
            }
            st.gone.remove(&msg.node);
        }
        match st.peers.get(&msg.node) {
            // A snapshot for this node carries the seq of the sender's message before it.
            Some(p)
                if msg.incarnation < p.incarnation
                    || (msg.incarnation == p.incarnation
                        && (msg.seq < p.last_seq || (msg.seq == p.last_seq && !addressed))) =>
            {
                return Err(refuse(
                    &mut st.stats.rejected_replayed,
                    "message replayed or out of date",
                ));
            }
            Some(p) if msg.incarnation > p.incarnation => {
                // The node restarted: its old incarnation's presences are gone now.
                self.drop_peer(st, shared, &msg.node);
                st.gone.remove(&msg.node);
            }
            Some(_) => {}
            None if st.peers.len() >= self.cfg.max_nodes => {
                return Err(refuse(&mut st.stats.rejected_malformed, "too many nodes"));
            }
            None => {}
        }
        if !st.peers.contains_key(&msg.node) {
            let id = st.next_id;
            st.next_id += 1;
            st.peers.insert(
                msg.node.clone(),
                Peer {
                    id,
                    incarnation: msg.incarnation,
                    last_seq: 0,
                    in_sync: false,
                    last_heard: Instant::now(),
                    request_wait: 0,
                    staging: None,
                    topics: HashSet::new(),
                    held: 0,
                },
            );
        }
        Ok(())
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
                    if let Err(why) = self.merge(shared, peer, topics, false) {
                        return Received::Over(why);
                    }
                }
            }
            Body::Snapshot { part, last, topics }
            | Body::SnapshotFor {
                part, last, topics, ..
            } => {
                if let Err(why) =
                    self.receive_part(shared, peer, seq, addressed, part, last, topics)
                {
                    peer.staging = None;
                    return Received::Over(why);
                }
            }
        }
        Received::Applied
    }

    /// Stages one snapshot part; the last one replaces the sender's whole state.
    #[allow(clippy::too_many_arguments)] // one snapshot part's fields, as decoded
    fn receive_part(
        &self,
        shared: &Shared,
        peer: &mut Peer,
        seq: u64,
        addressed: bool,
        part: u32,
        last: bool,
        topics: Vec<TopicChange>,
    ) -> std::result::Result<(), &'static str> {
        let continues = peer
            .staging
            .as_ref()
            .is_some_and(|s| s.next_seq == seq && s.next_part == part);
        if part == 0 {
            peer.staging = Some(Staging::default());
        } else if !continues {
            peer.staging = None;
            peer.in_sync = false;
            return Ok(());
        }
        let limits = &shared.config;
        let staging = peer.staging.as_mut().expect("started or continued above");
        // `seq` is below u64::MAX (checked with the message); a part number that wraps
        // continues nothing, as part 0 starts afresh.
        // Parts of a snapshot for this node alone share one seq.
        staging.next_seq = seq + u64::from(!addressed);
        staging.next_part = part.wrapping_add(1);
        for t in topics {
            staging.add(t);
        }
        if staging.items > limits.max_presences {
            return Err("a node holds more than max_presences");
        }
        if staging.topics.len() > limits.max_topics {
            return Err("a node holds more than max_topics topics");
        }
        if last {
            let staging = peer.staging.take().expect("checked above");
            let topics = staging
                .topics
                .into_iter()
                .map(|(topic, change)| TopicChange { topic, change })
                .collect();
            self.merge(shared, peer, topics, true)?;
            peer.in_sync = true;
        }
        Ok(())
    }

    /// Merges topic changes of `peer` (with `replace`, a whole snapshot: topics it does not
    /// name lose the peer's part), after checking that the result fits this node's limits:
    /// all of it is merged, or nothing.
    fn merge(
        &self,
        shared: &Shared,
        peer: &mut Peer,
        topics: Vec<TopicChange>,
        replace: bool,
    ) -> std::result::Result<(), &'static str> {
        let blank = Topic::new("", 0, false);
        let mut held = if replace { 0 } else { peer.held };
        let mut sizes = Vec::with_capacity(topics.len());
        let mut new_topics = 0;
        for t in &topics {
            let (shard, hash) = shared.topic_hash(&t.topic);
            let shard = lock(&shared.topics[shard as usize]);
            let found = shard.find(hash, &t.topic).and_then(|slot| shard.get(slot));
            let before = match (replace, found) {
                (false, Some(topic)) => topic.remote_part_size(peer.id),
                _ => 0,
            };
            let after = size_after(found.unwrap_or(&blank), peer.id, &t.change, replace);
            held = held.saturating_sub(before).saturating_add(after);
            new_topics += usize::from(found.is_none() && !holds_nothing(&t.change));
            sizes.push(after);
        }
        if held > shared.config.max_presences {
            return Err("a node holds more than max_presences");
        }
        let mut reserved = reserve_many(&shared.topic_count, shared.config.max_topics, new_topics)
            .ok_or("no room for a node's topics within max_topics")?;
        let mut stale = if replace {
            peer.topics.clone()
        } else {
            HashSet::new()
        };
        for (t, size) in topics.into_iter().zip(sizes) {
            stale.remove(&t.topic);
            self.apply(shared, peer, t, replace, &mut reserved, size);
        }
        shared.topic_count.fetch_sub(reserved, Ordering::Relaxed);
        for topic in stale {
            self.drop_topic_part(shared, peer, &topic);
        }
        peer.held = held;
        Ok(())
    }

    /// Signs a message with the next sequence number.
    fn seal(&self, st: &mut NodeState, body: Body, phoenix: bool) -> Vec<u8> {
        st.seq += 1;
        self.seal_again(st, body, phoenix)
    }

    /// Signs a message with the sequence number of the last one: for messages to one node,
    /// which the others never see and so must not count.
    fn seal_again(&self, st: &mut NodeState, body: Body, phoenix: bool) -> Vec<u8> {
        let msg = Message {
            phoenix,
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
            self.drop_topic_part(shared, &mut peer, &topic);
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

    fn drop_topic_part(&self, shared: &Shared, peer: &mut Peer, topic: &str) {
        peer.topics.remove(topic);
        let (shard, hash) = shared.topic_hash(topic);
        let mut topics = lock(&shared.topics[shard as usize]);
        if let Some(slot) = topics.find(hash, topic) {
            if let Some(t) = topics.get_mut(slot) {
                t.drop_remote_node(peer.id);
            }
            shared.changed(&mut topics, slot, false);
        }
    }

    /// Applies one topic's change from `peer`, already checked against the limits;
    /// `reserved` topic slots pay for the topics it creates, and `size` is what the
    /// peer's part will hold.
    fn apply(
        &self,
        shared: &Shared,
        peer: &mut Peer,
        t: TopicChange,
        replace: bool,
        reserved: &mut usize,
        size: usize,
    ) {
        let (shard, hash) = shared.topic_hash(&t.topic);
        let mut topics = lock(&shared.topics[shard as usize]);
        let slot = match topics.find(hash, &t.topic) {
            Some(slot) => slot,
            None if holds_nothing(&t.change) => {
                // Nothing to hold, nothing to create.
                peer.topics.remove(&t.topic);
                return;
            }
            None => {
                if *reserved > 0 {
                    *reserved -= 1;
                } else {
                    // The topic was there when the message was checked and a poll removed
                    // it since (it held nothing then): it comes back beyond the
                    // reservation, at most once per topic per message.
                    shared.topic_count.fetch_add(1, Ordering::Relaxed);
                }
                topics.create(hash, &t.topic, true)
            }
        };
        let topic: &mut Topic = topics.get_mut(slot).expect("found or created");
        let holds = match t.change {
            Change::Counts {
                viewers,
                connections,
                added,
                removed,
            } => {
                topic.apply_remote_counts(peer.id, viewers, connections, &added, &removed, replace)
            }
            Change::Phoenix { joins, leaves } => {
                let arrivals = joins
                    .into_iter()
                    .map(|w| arrival(shared, &t.topic, w))
                    .collect();
                topic.apply_remote_phoenix(peer.id, arrivals, &leaves, replace, &mut || {
                    shared.new_ref()
                })
            }
        };
        debug_assert_eq!(topic.remote_part_size(peer.id), size);
        shared.changed(&mut topics, slot, false);
        if holds {
            peer.topics.insert(t.topic);
        } else {
            peer.topics.remove(&t.topic);
        }
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

/// Checks everything a message claims against this node's own bounds, as for local
/// input: sequence numbers, topic names and keys (non-empty, no NUL, within the byte
/// limits, no key equal to `viewers_key`), metas, and counts (viewers within connections,
/// connections within `max_presences`). Metas are trimmed as local ones are. A delta
/// names each topic once.
fn check_message(shared: &Shared, msg: &mut Message) -> Result<()> {
    let malformed =
        |why: &str| Error::new(ErrorKind::Rejected, format!("message is malformed: {why}"));
    let phoenix = shared.config.format == Format::Phoenix;
    // Requests and departures carry no format-specific body.
    let neutral = matches!(
        msg.body,
        Body::SnapshotRequest { .. } | Body::Leave | Body::Heartbeat
    );
    if msg.phoenix != phoenix && !neutral {
        return Err(malformed("of the other wire format"));
    }
    if msg.seq == u64::MAX {
        // No sender gets there, and nothing could follow it.
        return Err(malformed("sequence number out of range"));
    }
    let (topics, delta) = match &mut msg.body {
        Body::Delta(topics) => (topics, true),
        Body::Snapshot { topics, .. } | Body::SnapshotFor { topics, .. } => (topics, false),
        _ => return Ok(()),
    };
    let mut named = HashSet::new();
    for t in topics.iter_mut() {
        shared
            .check_topic(&t.topic)
            .map_err(|e| malformed(e.message()))?;
        if delta && !named.insert(t.topic.clone()) {
            return Err(malformed("a delta names a topic twice"));
        }
        match &mut t.change {
            Change::Counts {
                viewers,
                connections,
                ..
            } => {
                if viewers > connections || *connections > shared.config.max_presences as u64 {
                    return Err(malformed("counts out of bounds"));
                }
            }
            Change::Phoenix { joins, .. } => {
                for w in joins {
                    if let Some(k) = &w.key {
                        shared.check_key(k).map_err(|e| malformed(e.message()))?;
                    }
                    let trimmed = shared
                        .check_meta(Some(&w.meta))
                        .map_err(|e| malformed(e.message()))?;
                    if trimmed.len() != w.meta.len() {
                        w.meta = trimmed.to_owned();
                    }
                }
            }
        }
    }
    Ok(())
}

/// A checked remote entry, with the keyed hash of its key in `topic`.
fn arrival(shared: &Shared, topic: &str, w: WireEntry) -> Arrival {
    let key_hash = match &w.key {
        Some(k) => shared.key_hash(topic, k),
        None => crate::topic::ANONYMOUS,
    };
    Arrival {
        entry: Entry {
            key: w.key.map(Into::into),
            meta: w.meta.into(),
            phx_ref: w.phx_ref,
            prev_ref: w.prev_ref,
        },
        key_hash,
    }
}

/// What `peer`'s part of `t` will hold after `change`.
fn size_after(t: &Topic, peer: u32, change: &Change, replace: bool) -> usize {
    match change {
        Change::Counts {
            connections,
            added,
            removed,
            ..
        } => t.remote_counts_size_after(peer, *connections, added, removed, replace),
        Change::Phoenix { joins, leaves } => {
            let refs: Vec<u64> = joins.iter().map(|w| w.phx_ref).collect();
            t.remote_phoenix_size_after(peer, &refs, leaves, replace)
        }
    }
}

/// Takes `n` units of a limited count at once, or none; returns `n`.
fn reserve_many(count: &AtomicUsize, max: usize, n: usize) -> Option<usize> {
    if n == 0 {
        return Some(0);
    }
    let before = count.fetch_add(n, Ordering::Relaxed);
    if before.checked_add(n).is_none_or(|total| total > max) {
        count.fetch_sub(n, Ordering::Relaxed);
        return None;
    }
    Some(n)
}

fn refuse(counter: &mut u64, why: &str) -> Error {
    *counter += 1;
    Error::new(ErrorKind::Rejected, why)
}

/// A change that leaves the sender with no part in a topic where it had none.
fn holds_nothing(c: &Change) -> bool {
    match c {
        // Viewers are within connections (checked with the message).
        Change::Counts {
            connections, added, ..
        } => *connections == 0 && added.iter().all(|h| *h == crate::topic::ANONYMOUS),
        Change::Phoenix { joins, .. } => joins.is_empty(),
    }
}

fn change_items(c: &Change) -> usize {
    match c {
        Change::Counts { added, removed, .. } => added.len() + removed.len(),
        Change::Phoenix { joins, leaves } => joins.len() + leaves.len(),
    }
}

/// The presences a staged change holds, as `Topic::remote_part_size` counts them (an
/// upper bound: repeats count).
fn weight(c: &Change) -> usize {
    match c {
        Change::Counts {
            connections, added, ..
        } => usize::try_from(*connections)
            .unwrap_or(usize::MAX)
            .max(added.len()),
        Change::Phoenix { joins, .. } => joins.len(),
    }
}

/// Heap bytes of what a staged change keeps of a piece (a snapshot's `removed` and
/// `leaves` are not kept).
fn staged_bytes(c: &Change) -> usize {
    match c {
        Change::Counts { added, .. } => added.len() * std::mem::size_of::<u64>(),
        Change::Phoenix { joins, .. } => joins
            .iter()
            .map(|w| {
                std::mem::size_of::<WireEntry>()
                    + w.key.as_ref().map_or(0, String::len)
                    + w.meta.len()
            })
            .sum(),
    }
}

impl Staging {
    /// Folds a snapshot piece into the staged snapshot (a large topic arrives in pieces).
    fn add(&mut self, t: TopicChange) {
        if holds_nothing(&t.change) {
            return;
        }
        let TopicChange { topic, change } = t;
        self.bytes += staged_bytes(&change);
        let old = match self.topics.get(&topic) {
            Some(c) => weight(c),
            None => {
                self.bytes += std::mem::size_of::<(String, Change)>() + topic.len();
                0
            }
        };
        let staged = self.topics.entry(topic).or_insert_with(|| match change {
            Change::Counts { .. } => Change::Counts {
                viewers: 0,
                connections: 0,
                added: Vec::new(),
                removed: Vec::new(),
            },
            Change::Phoenix { .. } => Change::Phoenix {
                joins: Vec::new(),
                leaves: Vec::new(),
            },
        });
        match (&mut *staged, change) {
            (
                Change::Counts {
                    viewers,
                    connections,
                    added,
                    ..
                },
                Change::Counts {
                    viewers: v,
                    connections: c,
                    added: a,
                    ..
                },
            ) => {
                *viewers = v;
                *connections = c;
                added.extend(a);
            }
            (Change::Phoenix { joins, .. }, Change::Phoenix { joins: j, .. }) => joins.extend(j),
            // A message is of one format, checked on arrival.
            _ => {}
        }
        self.items = self.items - old + weight(staged);
    }
}

/// Halves a change until each piece fits in `budget` bytes.
fn split(t: TopicChange, budget: usize) -> Vec<TopicChange> {
    if wire::topic_size(&t) <= budget || change_items(&t.change) <= 1 {
        return vec![t];
    }
    let halves = match t.change {
        Change::Counts {
            viewers,
            connections,
            mut added,
            mut removed,
        } => {
            let (a2, r2) = (
                added.split_off(added.len() / 2),
                removed.split_off(removed.len() / 2),
            );
            [
                Change::Counts {
                    viewers,
                    connections,
                    added,
                    removed,
                },
                Change::Counts {
                    viewers,
                    connections,
                    added: a2,
                    removed: r2,
                },
            ]
        }
        Change::Phoenix {
            mut joins,
            mut leaves,
        } => {
            let (j2, l2) = (
                joins.split_off(joins.len() / 2),
                leaves.split_off(leaves.len() / 2),
            );
            [
                Change::Phoenix { joins, leaves },
                Change::Phoenix {
                    joins: j2,
                    leaves: l2,
                },
            ]
        }
    };
    halves
        .into_iter()
        .flat_map(|change| {
            split(
                TopicChange {
                    topic: t.topic.clone(),
                    change,
                },
                budget,
            )
        })
        .collect()
}

/// This node's changes since the last tick, topic by topic (vacant topics are dropped),
/// and with `state`, every topic where this node has presences, in full, as of those
/// changes: each shard is read in one hold of its lock, so that no change falls between
/// the two or appears in both.
fn collect(
    shared: &Shared,
    phoenix: bool,
    state: bool,
) -> (Vec<TopicChange>, Option<Vec<TopicChange>>) {
    let mut out = Vec::new();
    let mut full = state.then(Vec::new);
    for shard in shared.topics.iter() {
        let mut topics = lock(shard);
        drain_shard(&mut topics, shared, phoenix, &mut out);
        if let Some(full) = &mut full {
            for slot in topics.slots() {
                if let Some(change) = topics.get(slot).and_then(|t| full_change(t, phoenix)) {
                    full.push(change);
                }
            }
        }
    }
    (out, full)
}

/// A topic's whole local part, or `None` where this node has no presence in it.
fn full_change(t: &Topic, phoenix: bool) -> Option<TopicChange> {
    if t.local_counts().connections == 0 {
        return None;
    }
    let local = t.local_counts();
    let change = if phoenix {
        Change::Phoenix {
            joins: t.local_entries().map(wire_entry).collect(),
            leaves: Vec::new(),
        }
    } else {
        Change::Counts {
            viewers: local.viewers,
            connections: local.connections,
            added: t.local_users().collect(),
            removed: Vec::new(),
        }
    };
    Some(TopicChange {
        topic: t.name().to_string(),
        change,
    })
}

/// Drains one shard's outboxes into `out`.
fn drain_shard(
    topics: &mut crate::shard::TopicShard,
    shared: &Shared,
    phoenix: bool,
    out: &mut Vec<TopicChange>,
) {
    for slot in std::mem::take(&mut topics.outbox) {
        let Some(t) = topics.get_mut(slot) else {
            continue;
        };
        if let Some(change) = drain_outbox(t, phoenix) {
            out.push(TopicChange {
                topic: t.name().to_string(),
                change,
            });
        }
        if t.is_vacant() && !t.is_dirty() {
            topics.remove(slot);
            shared.topic_count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn drain_outbox(t: &mut Topic, phoenix: bool) -> Option<Change> {
    let mut o = t.take_outbox()?;
    let local = t.local_counts();
    Some(if phoenix {
        let joins = o
            .joined
            .drain()
            .filter_map(|(r, conn)| t.local_entry(conn, r).map(wire_entry))
            .collect();
        Change::Phoenix {
            joins,
            leaves: o.left.drain().collect(),
        }
    } else {
        Change::Counts {
            viewers: local.viewers,
            connections: local.connections,
            added: o.added.drain().collect(),
            removed: o.removed.drain().collect(),
        }
    })
}

/// Every topic where this node has presences, in full; clears all outboxes, since the
/// snapshot supersedes what they held.
fn collect_snapshot(shared: &Shared, phoenix: bool) -> Vec<TopicChange> {
    let mut out = Vec::new();
    for shard in shared.topics.iter() {
        let mut topics = lock(shard);
        let queued = std::mem::take(&mut topics.outbox);
        for slot in topics.slots() {
            let Some(t) = topics.get_mut(slot) else {
                continue;
            };
            // The snapshot supersedes what the outbox held.
            t.take_outbox();
            if let Some(change) = full_change(t, phoenix) {
                out.push(change);
            }
        }
        for slot in queued {
            if topics
                .get(slot)
                .is_some_and(|t| t.is_vacant() && !t.is_dirty())
            {
                topics.remove(slot);
                shared.topic_count.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    out
}

fn wire_entry(e: &Entry) -> WireEntry {
    WireEntry {
        phx_ref: e.phx_ref,
        prev_ref: e.prev_ref,
        key: e.key.as_deref().map(str::to_owned),
        meta: e.meta.to_string(),
    }
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
