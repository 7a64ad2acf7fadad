//! `check` (part of `run.py --check`): three node processes must reach exactly the
//! counts of the standard check workload, in both formats, through joins, a `kill -9`, a
//! restart, a clean leave and the untracks. No timing.

use crate::coordinator::{check_rejections, expect_line, start_cluster, Node, Setup};
use presence_bench::args::Args;
use presence_bench::workload::Workload;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// The correctness check of `make test-bench`, in both formats: the standard check
/// workload (connection i on node i % 3, so a user's two tabs are on two nodes) must reach
/// the exact counts on every node; then kill -9 of a (partial), a restart of a with its
/// connections (tracked), a clean leave of a (partial), and b and c untracking everything
/// (empty). Each node prints the counts it reached (or held when 20 s ran out) as a check
/// line; run.py compares them with the workload's expected counts. No timing is asserted.
pub fn run(a: &Args) {
    let (n, topics) = (a.usize("n", 2001), a.usize("topics", 7));
    let w = Workload::with_anonymous(n, topics, a.usize("anonymous-every", 5));
    let names: Vec<String> = (0..w.used_topics())
        .map(|t| w.name_of_topic(t).to_owned())
        .collect();
    let expected = |conns: &mut dyn Iterator<Item = usize>| -> BTreeMap<String, [u64; 3]> {
        let mut per: BTreeMap<String, (u64, BTreeSet<usize>, u64)> = names
            .iter()
            .map(|t| (t.clone(), (0, BTreeSet::new(), 0)))
            .collect();
        for i in conns {
            let e = per.get_mut(w.topic_name(i)).expect("topic");
            match w.user_id(i) {
                None => e.0 += 1,
                Some(u) => {
                    e.1.insert(u as usize);
                }
            }
            e.2 += 1;
        }
        per.into_iter()
            .map(|(t, (v, u, c))| (t, [v, u.len() as u64, c]))
            .collect()
    };
    let tracked = expected(&mut (0..n));
    let partial = expected(&mut (0..n).filter(|i| i % 3 != 0));
    let empty = expected(&mut std::iter::empty());
    let line = |i: usize| match w.key(i) {
        Some(k) => format!("track {} {i} {k}", w.topic_name(i)),
        None => format!("track {} {i}", w.topic_name(i)),
    };
    for format in ["counts", "phoenix"] {
        let setup = Setup {
            url: a.required("url", crate::USAGE).to_owned(),
            channel: format!("bench-check-{format}-{}", std::process::id()),
            format,
            tick_ms: 50,
            down_after_ms: 1000,
            snapshot_ms: 30_000,
        };
        let imp = format!("cluster-{format}");
        let report = |nodes: &mut [&mut Node],
                      phase: &str,
                      step: &str,
                      want: &BTreeMap<String, [u64; 3]>| {
            let l = expect_line(20_000, want);
            for node in nodes.iter_mut() {
                node.send(&l);
            }
            for node in nodes.iter_mut() {
                let v = node.recv();
                println!(
                    "{}",
                    json!({"check": "counts", "impl": imp, "phase": phase,
                           "node": node.name, "step": step, "topics": v["seen"]})
                );
            }
        };
        let mut nodes = start_cluster(&["a", "b", "c"], &setup);
        for i in 0..n {
            nodes[i % 3].ok(&line(i));
        }
        {
            let [na, nb, nc] = &mut nodes[..] else {
                unreachable!()
            };
            report(&mut [na, nb, nc], "tracked", "joined", &tracked);
        }
        let mut it = nodes.into_iter();
        let (na, mut nb, mut nc) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        na.kill9();
        report(&mut [&mut nb, &mut nc], "partial", "a killed", &partial);
        let mut na = Node::start("a", &setup);
        na.ok("peers 2 20000");
        for i in (0..n).step_by(3) {
            na.ok(&line(i));
        }
        report(
            &mut [&mut na, &mut nb, &mut nc],
            "tracked",
            "a restarted",
            &tracked,
        );
        na.ok("leave");
        report(&mut [&mut nb, &mut nc], "partial", "a left", &partial);
        drop(na);
        for i in 0..n {
            let node = if i % 3 == 1 { &mut nb } else { &mut nc };
            if i % 3 != 0 {
                node.ok(&format!("untrack {} {i}", w.topic_name(i)));
            }
        }
        report(&mut [&mut nb, &mut nc], "empty", "all untracked", &empty);
        check_rejections(&mut [nb, nc]);
    }
}
