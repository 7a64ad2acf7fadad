//! `wire`: the bytes and messages each node publishes under churn, with its periodic
//! snapshot accounted for, beside what per-event replication (one message per join or
//! leave) would publish for the same events: what the bus carries for a cluster.

use crate::coordinator::{check_rejections, settle, start_cluster, Setup};
use crate::format_of;
use presence_bench::args::Args;
use presence_bench::out::Record;
use presence_core::Format;
use serde_json::{json, Value};

/// Wire cost: each of three nodes holds about `presences` presences over the same
/// `topics` topics and applies `rate` joins+leaves per second; what each publishes (from
/// its cluster stats) beside what per-event replication would publish for the same events.
/// Periodic snapshots are switched off during the runs and accounted for separately: the
/// size of a snapshot of what the node holds, divided by the default 30 s interval.
pub fn run(a: &Args) {
    let format = a.str("format").unwrap_or("counts");
    let fmt = format_of(format);
    let tick = a.usize("tick-ms", 250) as u64;
    let (presences, topics) = (a.usize("presences", 10_000), a.usize("topics", 1000));
    let seconds = a.usize("seconds", 10);
    let setup = Setup {
        url: a.required("url", crate::USAGE).to_owned(),
        channel: format!("bench-wire-{format}-{}", std::process::id()),
        format: if fmt == Format::Phoenix {
            "phoenix"
        } else {
            "counts"
        },
        tick_ms: tick,
        down_after_ms: 3000,
        snapshot_ms: 3_600_000,
    };
    let names = ["a", "b", "c"];
    let mut nodes = start_cluster(&names, &setup);
    for (k, n) in nodes.iter_mut().enumerate() {
        // A user pool shared by the nodes: two tabs per user on average, some on two nodes.
        n.ok(&format!(
            "populate {presences} {topics} {} {}",
            presences / 2,
            1000 + k
        ));
    }
    settle(&mut nodes, topics);
    let default_snapshot_ms = 30_000.0;
    for rate in a.list("rates", &[10, 100, 1000, 10_000]) {
        for n in nodes.iter_mut() {
            n.send(&format!("churn {rate} {seconds}"));
        }
        let outs: Vec<Value> = nodes.iter_mut().map(|n| n.recv()).collect();
        settle(&mut nodes, topics);
        let f = |k: &str| -> Vec<f64> {
            outs.iter()
                .map(|o| o[k].as_f64().expect("number"))
                .collect()
        };
        // Events and bytes per second of churn; messages per second of the whole stats
        // window (the churn and the one tick after it that publishes its last changes).
        let (secs, spans, events) = (f("seconds"), f("span"), f("events"));
        let per = |k: &str, d: &[f64]| -> Vec<f64> {
            f(k).iter().zip(d).map(|(v, s)| v / s).collect::<Vec<_>>()
        };
        let per_s = |k: &str| per(k, &secs);
        let snap_bytes: Vec<f64> = f("snapshot_bytes")
            .iter()
            .map(|b| b * 1000.0 / default_snapshot_ms)
            .collect();
        let params = json!({"format": format, "rate": rate, "presences": presences,
                            "topics": topics, "tick_ms": tick, "nodes": 3});
        let snapshots_in_window: f64 = f("snapshots_sent").iter().sum();
        Record::new("cluster_wire", &format!("engine-{format}"), "bytes/s")
            .params(params.clone())
            .baseline(&format!("per-event-{format}"))
            .field("msgs_per_s", json!(per("messages_sent", &spans)))
            .field("snapshot_bytes_per_s", json!(snap_bytes))
            .field("snapshot_bytes", json!(f("snapshot_bytes")))
            .field("snapshot_messages", json!(f("snapshot_messages")))
            .field("events_per_s", json!(per_s("events")))
            .field("snapshots_in_window", json!(snapshots_in_window))
            .field(
                "snapshot_requests_in_window",
                json!(f("snapshot_requests_sent").iter().sum::<f64>()),
            )
            .emit(&per_s("bytes_sent"));
        Record::new("cluster_wire", &format!("per-event-{format}"), "bytes/s")
            .params(params)
            .field("msgs_per_s", json!(per_s("events")))
            .field("events", json!(events))
            .emit(&per_s("per_event_bytes"));
    }
    check_rejections(&mut nodes);
}
