//! A poll's diffs rendered into the messages a host sends: each topic's message in an
//! envelope, all in one text, with per-topic views into it.

use crate::batch::{DiffBatch, DiffSink};
use crate::envelope::{Envelope, DIFF_EVENT};
use crate::topic::{Counts, Occupancy};
use std::ops::Range;

/// One topic of a [`ReadyBatch`]: borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyDiff<'a> {
    /// The topic name.
    pub topic: &'a str,
    /// Per-topic sequence number, as in [`TopicDiff::seq`](crate::TopicDiff::seq).
    pub seq: u64,
    /// The live counts the diff leads to.
    pub counts: Counts,
    /// Whether the topic went from empty to not empty (or back) since the last poll.
    pub occupancy: Occupancy,
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
    /// Whether the topic went from empty to not empty (or back) since the last poll.
    pub occupancy: Occupancy,
    /// The payload.
    pub payload: Range<usize>,
    /// The whole message, or `None` without an envelope.
    pub message: Option<Range<usize>>,
}

/// A poll's diffs with every topic's message rendered in an [`Envelope`] (or with bare
/// payloads, without one), in one text, for hosts that write each message to sockets
/// as it is. [`Engine::poll_ready`](crate::Engine::poll_ready) renders a poll straight
/// into one, reusing its memory from one poll to the next.
#[derive(Clone, Debug, Default)]
pub struct ReadyBatch {
    text: String,
    items: Vec<ReadySpans>,
}

impl ReadyBatch {
    /// Renders the diffs of `batch` into `envelope` (event `presence_diff`), in the same
    /// order; without an envelope, keeps the topics and payloads only.
    pub fn new(batch: &DiffBatch, envelope: Option<&Envelope>) -> ReadyBatch {
        let mut ready = ReadyBatch {
            text: String::with_capacity(batch.text_len() + batch.len() * PER_TOPIC),
            items: Vec::with_capacity(batch.len()),
        };
        let mut out = ready.writer(envelope);
        for d in batch.iter() {
            out.begin(d.topic, d.seq, d.counts, d.occupancy)
                .push_str(d.payload);
            out.end();
        }
        ready
    }

    /// Empties the batch and returns a sink that renders a poll into it, keeping the
    /// memory of the poll before.
    pub(crate) fn writer<'a>(&'a mut self, envelope: Option<&'a Envelope>) -> ReadyWriter<'a> {
        self.text.clear();
        self.items.clear();
        ReadyWriter {
            batch: self,
            envelope,
        }
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
            occupancy: s.occupancy,
            payload: &self.text[s.payload.clone()],
            message: s.message.clone().map(|m| &self.text[m]),
        }
    }
}

/// Bytes per topic besides the name and payload that a first poll reserves for: the event
/// envelope around the payload with a short seq (the batch grows past it when needed).
const PER_TOPIC: usize = 56;

/// Renders each topic of a poll into a [`ReadyBatch`]: its name, then its message around
/// its payload (or the payload alone), so the payload is written once, in place.
pub(crate) struct ReadyWriter<'a> {
    batch: &'a mut ReadyBatch,
    envelope: Option<&'a Envelope>,
}

impl DiffSink for ReadyWriter<'_> {
    fn reserve(&mut self, topics: usize) {
        self.batch.items.reserve(topics);
        self.batch.text.reserve(topics * (PER_TOPIC + 64));
    }

    fn begin(
        &mut self,
        topic: &str,
        seq: u64,
        counts: Counts,
        occupancy: Occupancy,
    ) -> &mut String {
        let text = &mut self.batch.text;
        let start = text.len();
        text.push_str(topic);
        let name = start..text.len();
        let message = self.envelope.map(|env| {
            let start = text.len();
            env.open(text, DIFF_EVENT, topic, seq);
            start..start
        });
        let payload = text.len();
        self.batch.items.push(ReadySpans {
            topic: name,
            seq,
            counts,
            occupancy,
            payload: payload..payload,
            message,
        });
        text
    }

    fn end(&mut self) {
        let text = &mut self.batch.text;
        let Some(item) = self.batch.items.last_mut() else {
            return;
        };
        item.payload.end = text.len();
        if let (Some(env), Some(message)) = (self.envelope, item.message.as_mut()) {
            env.close(text);
            message.end = text.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::DiffBatch;

    fn two_topics() -> DiffBatch {
        let mut b = DiffBatch::new();
        for (topic, seq, payload) in [("a", 1, "{\"x\":1}"), ("b:é", 9, "{\"y\":[2]}")] {
            b.begin(topic, seq, Counts::default(), Occupancy::Unchanged)
                .push_str(payload);
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
