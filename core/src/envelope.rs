//! Envelopes: a payload wrapped into the whole message a host sends for it. The core
//! renders the message, so a host writes it to its sockets as it is, without decoding the
//! payload and encoding it again. Each envelope's shape is defined here and nowhere else.

use crate::batch::TopicDiff;
use crate::json;
use crate::shared::State;
use std::ops::Range;

/// The event name of a diff message.
pub const DIFF_EVENT: &str = "presence_diff";
/// The event name of a state message (what a joining client starts from).
pub const STATE_EVENT: &str = "presence_state";

/// A message shape that wraps a payload. Strings in it are escaped as `JSON.stringify`
/// escapes them and there is no whitespace, so a message is byte for byte what
/// `JSON.stringify` (or Python's `json.dumps` with `separators=(",", ":")` and
/// `ensure_ascii=False`) makes of the same value, whenever the payload is in that form
/// itself (it is, except for metas the host gave as JSON text of another layout, which
/// are passed on as given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// `{"event":E,"topic":T,"seq":S,"payload":P}`: the protocol of examples/web. The seq
    /// lets a client see that it missed a diff (a gap) and ask for the state again.
    Event,
    /// A Phoenix Channels V2 JSON serializer frame, `[join_ref,ref,topic,event,payload]`,
    /// as a Phoenix server pushes it, so that phoenix.js (`Socket`, `Channel`, `Presence`)
    /// reads it unchanged. `ref` is always `null`: Phoenix sets it on replies only, never
    /// on pushes. `join_ref` is `null` for diffs, which Phoenix broadcasts to every
    /// channel of the topic; a state is pushed to one channel, and Phoenix sends it with
    /// that channel's join_ref, which is what `join_ref` is for (`null` works too:
    /// phoenix.js only drops a message whose join_ref is set and differs from its own).
    /// The frame has no seq.
    PhoenixV2 {
        /// The join_ref to send, or `None` for `null`.
        join_ref: Option<String>,
    },
}

impl Envelope {
    /// The Phoenix V2 envelope with `join_ref` null: the one for diffs.
    pub fn phoenix() -> Envelope {
        Envelope::PhoenixV2 { join_ref: None }
    }

    /// Appends the message of `payload` (JSON text, copied as it is) for `event` in
    /// `topic` to `out`, and returns the byte range the payload occupies in `out`.
    pub fn write(
        &self,
        out: &mut String,
        event: &str,
        topic: &str,
        seq: u64,
        payload: &str,
    ) -> Range<usize> {
        self.open(out, event, topic, seq);
        let start = out.len();
        out.push_str(payload);
        let end = out.len();
        self.close(out);
        start..end
    }

    /// Appends what comes before the payload in a message: a poll renders each payload
    /// straight after it, then calls [`close`](Self::close), without a copy of the payload.
    pub(crate) fn open(&self, out: &mut String, event: &str, topic: &str, seq: u64) {
        match self {
            Envelope::Event => {
                out.push_str("{\"event\":");
                json::push_str(out, event);
                out.push_str(",\"topic\":");
                json::push_str(out, topic);
                out.push_str(",\"seq\":");
                json::push_u64(out, seq);
                out.push_str(",\"payload\":");
            }
            Envelope::PhoenixV2 { join_ref } => {
                out.push('[');
                match join_ref {
                    Some(r) => json::push_str(out, r),
                    None => out.push_str("null"),
                }
                out.push_str(",null,");
                json::push_str(out, topic);
                out.push(',');
                json::push_str(out, event);
                out.push(',');
            }
        }
    }

    /// Appends what comes after the payload in a message opened by [`open`](Self::open).
    pub(crate) fn close(&self, out: &mut String) {
        out.push(match self {
            Envelope::Event => '}',
            Envelope::PhoenixV2 { .. } => ']',
        });
    }

    /// The whole message of one polled diff (event `presence_diff`).
    pub fn diff_message(&self, diff: &TopicDiff<'_>) -> String {
        let mut out = String::with_capacity(diff.payload.len() + diff.topic.len() + 64);
        self.write(&mut out, DIFF_EVENT, diff.topic, diff.seq, diff.payload);
        out
    }

    /// The whole message of a topic's state (event `presence_state`), from
    /// [`Engine::list`](crate::Engine::list): what to send a client that joins now.
    pub fn state_message(&self, topic: &str, state: &State) -> String {
        let mut out = String::with_capacity(state.json.len() + topic.len() + 64);
        self.write(&mut out, STATE_EVENT, topic, state.seq, &state.json);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("a message is JSON")
    }

    #[test]
    fn event_envelope_is_an_object_in_a_fixed_key_order() {
        let mut out = String::from("xx");
        let range = Envelope::Event.write(&mut out, DIFF_EVENT, "video:\"1\"", 7, "{\"a\":1}");
        assert_eq!(
            out,
            "xx{\"event\":\"presence_diff\",\"topic\":\"video:\\\"1\\\"\",\"seq\":7,\"payload\":{\"a\":1}}"
        );
        assert_eq!(&out[range], "{\"a\":1}");
    }

    #[test]
    fn phoenix_envelope_is_a_v2_frame_with_a_null_ref() {
        let state = State {
            json: "{}".into(),
            seq: 3,
        };
        assert_eq!(
            Envelope::phoenix().state_message("room:é", &state),
            "[null,null,\"room:é\",\"presence_state\",{}]"
        );
        let joined = Envelope::PhoenixV2 {
            join_ref: Some("12".into()),
        };
        assert_eq!(
            parse(&joined.state_message("room:lobby", &state)),
            json!(["12", null, "room:lobby", "presence_state", {}])
        );
    }

    #[test]
    fn a_diff_message_carries_the_diff_as_it_is() {
        let diff = TopicDiff {
            topic: "t\u{8}",
            seq: u64::MAX,
            counts: Default::default(),
            occupancy: Default::default(),
            payload: "{\"joins\":{},\"leaves\":{}}",
        };
        assert_eq!(
            parse(&Envelope::Event.diff_message(&diff)),
            json!({"event": "presence_diff", "topic": "t\u{8}", "seq": u64::MAX,
                   "payload": {"joins": {}, "leaves": {}}})
        );
        assert_eq!(
            parse(&Envelope::phoenix().diff_message(&diff)),
            json!([null, null, "t\u{8}", "presence_diff", {"joins": {}, "leaves": {}}])
        );
    }
}
