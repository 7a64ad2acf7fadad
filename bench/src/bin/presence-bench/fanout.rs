//! `fanout`: the messages and bytes per second a server sends to its subscribers under
//! churn, per-event (a poll after every join or leave, as Phoenix.Presence broadcasts)
//! against coalesced (a poll per 100 ms), in both formats; simulated time
//! (`presence_bench::fanout`), so the figures do not depend on the machine.

use presence_bench::args::Args;
use presence_bench::fanout::{self, Mode};
use presence_bench::out::Record;
use presence_core::Format;
use serde_json::json;

pub fn run(a: &Args) {
    let seconds = a.usize("seconds", 30) as u64;
    let modes = [
        ("per-event-phoenix", Format::Phoenix, Mode::PerEvent),
        ("per-event-counts", Format::Counts, Mode::PerEvent),
        ("coalesced-phoenix", Format::Phoenix, Mode::Coalesced),
        ("coalesced-counts", Format::Counts, Mode::Coalesced),
    ];
    for subscribers in a.list("subscribers", &[100, 1_000, 10_000, 100_000]) {
        for churn in a.list("churn", &[1, 10, 100, 1_000, 10_000]) {
            let params = json!({"subscribers": subscribers, "churn": churn, "seconds": seconds});
            for (imp, format, mode) in modes {
                let p = fanout::simulate(format, mode, subscribers, churn as u64, seconds);
                let rec = |bench: &str, unit: &str| {
                    let r = Record::new(bench, imp, unit)
                        .params(params.clone())
                        .field("events_per_s", json!(p.events))
                        .field("empty_msgs_per_s", json!(p.empty));
                    if imp == "per-event-phoenix" {
                        r
                    } else {
                        r.baseline("per-event-phoenix")
                    }
                };
                rec("fanout", "msgs/s").emit(&[p.messages]);
                rec("fanout_bytes", "bytes/s").emit(&[p.bytes]);
            }
        }
    }
}
