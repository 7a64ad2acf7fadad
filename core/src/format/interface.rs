//! What a format implements, and what it may ask of the topic: the traits behind which the
//! formats live. `mod.rs` registers the formats and dispatches these calls to them.

use super::phoenix::{self, HeldEntries};
use super::{Change, Counts, Outbox, PeerState};

/// What a format does with one topic. The topic keeps the counts (local and remote), the
/// users' refcounts, the published counts, the outbox and the held leaves; a format keeps
/// what it renders beyond them, and is told of each change after the counts took it.
/// What it keeps of other nodes' parts is its `PeerState`, which the topic keeps in its
/// remote part and lends to the renderings (`peers`), and which its merge of a peer's
/// change (`TopicState::merge`) fills.
///
/// Contract (the unit tests of this module check it for every format): a join followed
/// by its leave within one poll window leaves the state settled (`is_settled`) with
/// nothing to render beyond the counts; `write_diff` settles the state; `write_state`
/// renders what clients hold after the last `write_diff`.
pub(crate) trait FormatState {
    /// A local presence of `conn` joined; `new_ref` gives it a ref if the format names
    /// presences. Its outbox (cluster mode) learns what other nodes must.
    fn join(
        &mut self,
        conn: u64,
        key: Option<&str>,
        meta: &str,
        new_ref: impl FnOnce() -> u64,
        outbox: Option<&mut Outbox>,
    );

    /// The local presence of `conn` left.
    fn leave(&mut self, conn: u64, outbox: Option<&mut Outbox>);

    /// The presence of `conn` has a new meta. Returns whether clients will see a change.
    fn update(
        &mut self,
        conn: u64,
        meta: &str,
        new_ref: impl FnOnce() -> u64,
        outbox: Option<&mut Outbox>,
    ) -> bool;

    /// The presence of `conn` is held for the leave grace: what it keeps of it, for the
    /// held part of the topic.
    fn hold(&mut self, conn: u64) -> Option<Box<phoenix::Entry>>;

    /// `conn` takes over a held presence, with what `hold` kept of it. Returns whether
    /// clients will see a change (another meta).
    fn take_back(
        &mut self,
        conn: u64,
        held: Option<Box<phoenix::Entry>>,
        meta: &str,
        new_ref: impl FnOnce() -> u64,
        outbox: Option<&mut Outbox>,
    ) -> bool;

    /// A held presence fell due: its leave is made for real.
    fn leave_held(&mut self, held: Option<Box<phoenix::Entry>>, outbox: Option<&mut Outbox>);

    /// Whether the next poll has something to tell clients, given the counts they were
    /// last told and the counts now.
    fn changed(&self, published: Counts, now: Counts) -> bool;

    /// Renders the diff from `published` to `now` and settles what it rendered.
    fn write_diff(
        &mut self,
        out: &mut String,
        published: Counts,
        now: Counts,
        peers: Option<&PeerState>,
        held: Option<&dyn HeldEntries>,
        viewers_key: &str,
    );

    /// Renders the state as of the last poll.
    fn write_state(
        &self,
        out: &mut String,
        published: Counts,
        peers: Option<&PeerState>,
        held: Option<&dyn HeldEntries>,
        viewers_key: &str,
    );

    /// Renders the state of a topic that holds nothing.
    fn write_empty_state(out: &mut String);

    /// Nothing waits for a poll.
    fn is_settled(&self) -> bool;

    /// Heap bytes held for the format, with what the held part keeps for it.
    fn heap_bytes(&self, held: Option<&dyn HeldEntries>) -> usize;

    /// This node's whole part of the topic, for a snapshot.
    fn full_change(
        &self,
        local: Counts,
        users: impl Iterator<Item = u64>,
        held: Option<&dyn HeldEntries>,
    ) -> Change;

    /// This node's changes since the last tick, from the topic's outbox.
    fn drain_outbox(&self, o: &mut Outbox, local: Counts, held: Option<&dyn HeldEntries>)
        -> Change;
}

/// What every format's `PeerState` answers.
pub(crate) trait FormatPeers {
    /// Nothing is kept: the remote part may go once no node has a part either.
    fn is_empty(&self) -> bool;
    /// A poll published the leaves: what only a later join could name is forgotten.
    fn forget_leaves(&mut self);
    fn heap_bytes(&self) -> usize;
}

/// The counting of other nodes' parts of a topic, which every format shares
/// (`topic/remote.rs`): per node its viewers, connections and users by key hash; across
/// nodes, a key hash counts once however many nodes (this one included) hold it.
pub(crate) trait PeerCounts {
    /// How many presences `node` holds here, what bounds a peer's memory: its connections
    /// or, if more, its distinct users.
    fn size(&self, node: u32) -> usize;
    /// How many distinct key hashes `node` holds here.
    fn users(&self, node: u32) -> usize;
    /// Whether `node` holds the key hash `h` here.
    fn holds(&self, node: u32, h: u64) -> bool;
}

/// The changes a format's merge makes to the shared counting of other nodes' parts. A
/// node's part is made by its first change and removed by `settle` once it holds nothing.
pub(crate) trait PeerCountsMut {
    /// Sets `node`'s viewer and connection counts (a counts-style change: absolute).
    fn set_totals(&mut self, node: u32, viewers: u64, connections: u64);
    /// `node` holds the key hash `h`, once however often it says so.
    fn add_user(&mut self, node: u32, h: u64);
    /// `node` no longer holds `h`, however many of its presences had it.
    fn remove_user(&mut self, node: u32, h: u64);
    /// `node` keeps only the key hashes `keep` accepts.
    fn retain_users(&mut self, node: u32, keep: &dyn Fn(u64) -> bool);
    /// One presence of `node` joined, with key hash `h` (`ANONYMOUS`: a viewer).
    fn joined(&mut self, node: u32, h: u64);
    /// One presence of `node` with key hash `h` left.
    fn left(&mut self, node: u32, h: u64);
    /// Removes `node`'s part if it holds nothing; returns whether it still has one.
    fn settle(&mut self, node: u32) -> bool;
}

/// This node's bounds on what a peer claims, as on local input.
pub(crate) trait Bounds {
    fn max_presences(&self) -> usize;
    /// Checks a key as a local one's.
    fn check_key(&self, key: &str) -> Result<(), String>;
    /// Checks a meta as a local one's; returns it trimmed.
    fn check_meta<'m>(&self, meta: &'m str) -> Result<&'m str, String>;
}
