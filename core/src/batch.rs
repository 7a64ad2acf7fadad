//! What a poll returns: one JSON array of envelopes, with per-topic views into it.

use crate::topic::{Counts, Occupancy};
use std::ops::Range;

/// One topic's entry in a poll: borrowed from its [`DiffBatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicDiff<'a> {
    /// The topic name.
    pub topic: &'a str,
    /// Per-topic sequence number: 1 for the first diff, +1 for each later one.
    pub seq: u64,
    /// The live counts the diff leads to.
    pub counts: Counts,
    /// Whether the topic went from empty to not empty (or back) since the last poll.
    pub occupancy: Occupancy,
    /// The `presence_diff` payload, in the engine's format.
    pub payload: &'a str,
}

/// Everything one poll returned: a JSON array of envelopes, and per-topic views into it.
///
/// The JSON form is `[{"topic":T,"seq":S,"counts":{"viewers":V,"users":U,"connections":C},"payload":P},...]`,
/// where each `P` is the very byte range that [`TopicDiff::payload`] borrows. A topic
/// that became occupied or vacated has `"occupancy":"occupied"` or `"occupancy":"vacated"`
/// after its counts; other topics have no `occupancy` key.
#[derive(Clone, Debug, Default)]
pub struct DiffBatch {
    json: String,
    names: String,
    items: Vec<Item>,
}

#[derive(Clone, Debug)]
struct Item {
    topic: Range<usize>,
    seq: u64,
    counts: Counts,
    occupancy: Occupancy,
    payload: Range<usize>,
}

/// Where a poll writes what it takes, topic by topic: `begin` receives a changed topic's
/// header and returns the text its payload is appended to, `end` follows the payload.
/// Each form of a poll's result (the JSON array, ready messages) is one sink, so a poll
/// renders straight into that form, in one pass.
pub(crate) trait DiffSink {
    /// Sizes the buffers for about `topics` changed topics, before the first `begin`.
    fn reserve(&mut self, topics: usize);
    /// Opens one changed topic and returns where its payload goes.
    fn begin(&mut self, topic: &str, seq: u64, counts: Counts, occupancy: Occupancy)
        -> &mut String;
    /// Closes the topic opened by `begin`, once its payload is written.
    fn end(&mut self);
}

impl DiffBatch {
    /// An empty batch, ready for `begin`.
    pub(crate) fn new() -> DiffBatch {
        DiffBatch {
            json: String::from("["),
            names: String::new(),
            items: Vec::new(),
        }
    }

    /// Bytes of the JSON text and the topic names: what a copy of the batch holds.
    pub(crate) fn text_len(&self) -> usize {
        self.json.len() + self.names.len()
    }

    /// Closes the JSON array.
    pub(crate) fn finish(&mut self) {
        self.json.push(']');
    }
}

impl DiffSink for DiffBatch {
    fn reserve(&mut self, topics: usize) {
        self.json.reserve(2 + topics * 200);
        self.names.reserve(topics * 16);
        self.items.reserve(topics);
    }

    /// Opens one envelope of the JSON array; its payload goes into `self.json`.
    fn begin(
        &mut self,
        topic: &str,
        seq: u64,
        counts: Counts,
        occupancy: Occupancy,
    ) -> &mut String {
        use crate::json::{push_str, push_u64};
        let out = &mut self.json;
        out.push_str(if self.items.is_empty() {
            "{\"topic\":"
        } else {
            ",{\"topic\":"
        });
        push_str(out, topic);
        out.push_str(",\"seq\":");
        push_u64(out, seq);
        out.push_str(",\"counts\":{\"viewers\":");
        push_u64(out, counts.viewers);
        out.push_str(",\"users\":");
        push_u64(out, counts.users);
        out.push_str(",\"connections\":");
        push_u64(out, counts.connections);
        out.push('}');
        if let Some(name) = occupancy.name() {
            out.push_str(",\"occupancy\":\"");
            out.push_str(name);
            out.push('"');
        }
        out.push_str(",\"payload\":");
        let name_start = self.names.len();
        self.names.push_str(topic);
        let start = self.json.len();
        self.items.push(Item {
            topic: name_start..self.names.len(),
            seq,
            counts,
            occupancy,
            payload: start..start,
        });
        &mut self.json
    }

    /// Closes the envelope opened by `begin`.
    fn end(&mut self) {
        let len = self.json.len();
        if let Some(item) = self.items.last_mut() {
            item.payload.end = len;
        }
        self.json.push('}');
    }
}

impl DiffBatch {
    /// The whole poll as one JSON array (`[]` when nothing changed).
    pub fn json(&self) -> &str {
        &self.json
    }

    /// Takes the JSON array out of the batch.
    pub fn into_json(self) -> String {
        self.json
    }

    /// Number of changed topics.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when no topic changed.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The topics in the order of the JSON array.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = TopicDiff<'_>> + '_ {
        self.items.iter().map(|i| self.view(i))
    }

    /// The `i`-th topic of the JSON array.
    pub fn get(&self, i: usize) -> Option<TopicDiff<'_>> {
        self.items.get(i).map(|i| self.view(i))
    }

    fn view(&self, i: &Item) -> TopicDiff<'_> {
        TopicDiff {
            topic: &self.names[i.topic.clone()],
            seq: i.seq,
            counts: i.counts,
            occupancy: i.occupancy,
            payload: &self.json[i.payload.clone()],
        }
    }
}
