//! What a poll returns: one JSON array of envelopes, with per-topic views into it.

use crate::envelope::{Envelope, DIFF_EVENT};
use crate::topic::Counts;
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
    /// The `presence_diff` payload, in the engine's format.
    pub payload: &'a str,
}

/// Everything one poll returned: a JSON array of envelopes, and per-topic views into it.
///
/// The JSON form is `[{"topic":T,"seq":S,"counts":{"viewers":V,"users":U,"connections":C},"payload":P},...]`,
/// where each `P` is the very byte range that [`TopicDiff::payload`] borrows.
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
    payload: Range<usize>,
}

impl DiffBatch {
    /// An empty batch, ready for `begin`;
    /// `topics` is how many topics are expected, to size the buffers once.
    pub(crate) fn new(topics: usize) -> DiffBatch {
        let mut json = String::with_capacity(2 + topics * 200);
        json.push('[');
        DiffBatch {
            json,
            names: String::with_capacity(topics * 16),
            items: Vec::with_capacity(topics),
        }
    }

    /// Where a payload is written between `begin` and `end`.
    pub(crate) fn out(&mut self) -> &mut String {
        &mut self.json
    }

    /// Closes the JSON array.
    pub(crate) fn finish(&mut self) {
        self.json.push(']');
    }

    /// Opens one envelope and returns where its payload starts; the caller appends the
    /// payload to `self.json`, then calls `end`.
    pub(crate) fn begin(&mut self, topic: &str, seq: u64, counts: Counts) -> usize {
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
        out.push_str("},\"payload\":");
        let name_start = self.names.len();
        self.names.push_str(topic);
        let start = self.json.len();
        self.items.push(Item {
            topic: name_start..self.names.len(),
            seq,
            counts,
            payload: start..start,
        });
        start
    }

    /// Closes the envelope opened by `begin`.
    pub(crate) fn end(&mut self) {
        let len = self.json.len();
        if let Some(item) = self.items.last_mut() {
            item.payload.end = len;
        }
        self.json.push('}');
    }

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
            payload: &self.json[i.payload.clone()],
        }
    }
}

/// One topic of a [`ReadyBatch`]: borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyDiff<'a> {
    /// The topic name.
    pub topic: &'a str,
    /// Per-topic sequence number, as in [`TopicDiff::seq`].
    pub seq: u64,
    /// The live counts the diff leads to.
    pub counts: Counts,
    /// The `presence_diff` payload (JSON text); inside `message` when there is one.
    pub payload: &'a str,
    /// The whole message in the batch's envelope, or `None` for a batch without one.
    pub message: Option<&'a str>,
}

/// Where the parts of one topic of a [`ReadyBatch`] sit in [`ReadyBatch::text`], in bytes.
/// In the text a topic's name comes first, then its message (which holds the payload),
/// or its payload alone without an envelope: the ranges follow each other in that order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadySpans {
    /// The topic name.
    pub topic: Range<usize>,
    /// The per-topic sequence number.
    pub seq: u64,
    /// The live counts the diff leads to.
    pub counts: Counts,
    /// The payload.
    pub payload: Range<usize>,
    /// The whole message, or `None` without an envelope.
    pub message: Option<Range<usize>>,
}

/// A poll's diffs with every topic's message rendered in an [`Envelope`] (or with bare
/// payloads, without one), in one text, for hosts that write each message to sockets
/// as it is.
#[derive(Clone, Debug, Default)]
pub struct ReadyBatch {
    text: String,
    items: Vec<ReadySpans>,
}

impl ReadyBatch {
    /// Renders the diffs of `batch` into `envelope` (event `presence_diff`), in the same
    /// order; without an envelope, keeps the topics and payloads only.
    pub fn new(batch: &DiffBatch, envelope: Option<&Envelope>) -> ReadyBatch {
        let per_topic = if envelope.is_some() { 48 } else { 0 };
        let mut text =
            String::with_capacity(batch.json.len() + batch.names.len() + batch.len() * per_topic);
        let mut items = Vec::with_capacity(batch.len());
        for d in batch.iter() {
            let topic_start = text.len();
            text.push_str(d.topic);
            let topic = topic_start..text.len();
            let (payload, message) = match envelope {
                Some(env) => {
                    let start = text.len();
                    let payload = env.write(&mut text, DIFF_EVENT, d.topic, d.seq, d.payload);
                    (payload, Some(start..text.len()))
                }
                None => {
                    let start = text.len();
                    text.push_str(d.payload);
                    (start..text.len(), None)
                }
            };
            items.push(ReadySpans {
                topic,
                seq: d.seq,
                counts: d.counts,
                payload,
                message,
            });
        }
        ReadyBatch { text, items }
    }

    /// Every topic's name and message (or payload) back to back; see [`ReadySpans`].
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Number of changed topics.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when no topic changed.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The `i`-th topic, in poll order.
    pub fn get(&self, i: usize) -> Option<ReadyDiff<'_>> {
        self.items.get(i).map(|s| self.view(s))
    }

    /// The topics in poll order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = ReadyDiff<'_>> + '_ {
        self.items.iter().map(|s| self.view(s))
    }

    /// The topics as byte ranges into [`text`](Self::text), in poll order.
    pub fn spans(&self) -> &[ReadySpans] {
        &self.items
    }

    /// Takes the text out of the batch.
    pub fn into_parts(self) -> (String, Vec<ReadySpans>) {
        (self.text, self.items)
    }

    fn view(&self, s: &ReadySpans) -> ReadyDiff<'_> {
        ReadyDiff {
            topic: &self.text[s.topic.clone()],
            seq: s.seq,
            counts: s.counts,
            payload: &self.text[s.payload.clone()],
            message: s.message.clone().map(|m| &self.text[m]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_topics() -> DiffBatch {
        let mut b = DiffBatch::new(2);
        for (topic, seq, payload) in [("a", 1, "{\"x\":1}"), ("b:é", 9, "{\"y\":[2]}")] {
            b.begin(topic, seq, Counts::default());
            b.out().push_str(payload);
            b.end();
        }
        b.finish();
        b
    }

    #[test]
    fn a_ready_batch_without_envelope_keeps_topics_and_payloads() {
        let diffs = two_topics();
        let ready = ReadyBatch::new(&diffs, None);
        assert_eq!(ready.text(), "a{\"x\":1}b:é{\"y\":[2]}");
        let got: Vec<_> = ready
            .iter()
            .map(|d| (d.topic, d.seq, d.payload, d.message))
            .collect();
        assert_eq!(
            got,
            [("a", 1, "{\"x\":1}", None), ("b:é", 9, "{\"y\":[2]}", None)]
        );
    }

    #[test]
    fn a_ready_batch_holds_each_message_as_the_envelope_renders_it() {
        let diffs = two_topics();
        for envelope in [Envelope::Event, Envelope::phoenix()] {
            let ready = ReadyBatch::new(&diffs, Some(&envelope));
            assert_eq!(ready.len(), 2);
            for (d, r) in diffs.iter().zip(ready.iter()) {
                assert_eq!((r.topic, r.seq, r.payload), (d.topic, d.seq, d.payload));
                assert_eq!(r.message, Some(envelope.diff_message(&d).as_str()));
            }
            // Each topic's parts follow each other: name, then message around its payload.
            let mut at = 0;
            for s in ready.spans() {
                let m = s.message.clone().expect("an envelope gives messages");
                assert_eq!((s.topic.start, s.topic.end), (at, m.start));
                assert!(m.start < s.payload.start && s.payload.end < m.end);
                at = m.end;
            }
            assert_eq!(at, ready.text().len());
            assert_eq!(ready.get(1), ready.iter().nth(1));
            assert_eq!(ready.get(2), None);
            assert_eq!(diffs.get(1), diffs.iter().nth(1));
            assert_eq!(diffs.get(2), None);
        }
    }
}
