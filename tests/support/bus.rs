//! The host's own bus between the engines of one test: each node's cluster messages are
//! handed to the others by hand, as a host without the Redis link does.

use presence_core::Engine;

/// One tick of every node, each message delivered to every other node. Returns every
/// message published.
pub fn round(nodes: &[&Engine]) -> Vec<Vec<u8>> {
    deliver(nodes, false, |_| false)
}

/// A round in which every delivery `lose` picks is dropped.
pub fn lossy_round(nodes: &[&Engine], lose: impl FnMut(&[u8]) -> bool) -> Vec<Vec<u8>> {
    deliver(nodes, false, lose)
}

/// A round in which each message also comes back to its sender, as pub/sub echoes it.
pub fn echoed_round(nodes: &[&Engine]) {
    deliver(nodes, true, |_| false);
}

/// A few rounds: enough for every node to hold every other's presences.
pub fn settle(nodes: &[&Engine]) {
    for _ in 0..3 {
        round(nodes);
    }
}

fn deliver(nodes: &[&Engine], echo: bool, mut lose: impl FnMut(&[u8]) -> bool) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        for msg in n.cluster_tick().unwrap() {
            for (j, other) in nodes.iter().enumerate() {
                if (i != j || echo) && !lose(&msg) {
                    other
                        .cluster_ingest(&msg)
                        .unwrap_or_else(|e| panic!("refused: {e}"));
                }
            }
            all.push(msg);
        }
    }
    all
}
