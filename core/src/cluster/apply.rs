//! The last step of ingest: a sender's topic changes merged into the engine's topics,
//! after checking that the result fits this node's limits: all of them, or none.

use super::peers::Peer;
use super::wire::TopicChange;
use crate::shard::lock;
use crate::shared::Shared;
use crate::topic::Topic;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Merges topic changes of `peer` (with `replace`, a whole snapshot: topics it does not
/// name lose the peer's part), after checking that the result fits this node's limits:
/// all of it is merged, or nothing.
pub(super) fn merge(
    shared: &Shared,
    peer: &mut Peer,
    topics: Vec<TopicChange>,
    replace: bool,
) -> std::result::Result<(), &'static str> {
    let blank = Topic::new("", 0, false, shared.config.format);
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
        let after = found
            .unwrap_or(&blank)
            .remote_size_after(peer.id, &t.change, replace);
        held = held.saturating_sub(before).saturating_add(after);
        new_topics += usize::from(found.is_none() && !t.change.holds_nothing());
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
        apply(shared, peer, t, replace, &mut reserved, size);
    }
    shared.topic_count.fetch_sub(reserved, Ordering::Relaxed);
    for topic in stale {
        drop_topic_part(shared, peer, &topic);
    }
    peer.held = held;
    Ok(())
}

/// Applies one topic's change from `peer`, already checked against the limits;
/// `reserved` topic slots pay for the topics it creates, and `size` is what the
/// peer's part will hold.
fn apply(
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
        None if t.change.holds_nothing() => {
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
            topics.create(hash, &t.topic, true, shared.config.format)
        }
    };
    let topic: &mut Topic = topics.get_mut(slot).expect("found or created");
    let name = &t.topic;
    let holds = topic.apply_remote(
        peer.id,
        t.change,
        replace,
        |k| shared.key_hash(name, k),
        &mut || shared.new_ref(),
    );
    debug_assert_eq!(topic.remote_part_size(peer.id), size);
    shared.changed(&mut topics, slot, false);
    if holds {
        peer.topics.insert(t.topic);
    } else {
        peer.topics.remove(&t.topic);
    }
}

/// Removes `peer`'s part of `topic`; its presences leave through the next poll.
pub(super) fn drop_topic_part(shared: &Shared, peer: &mut Peer, topic: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClusterConfig, Config};

    fn cluster_state(max_presences: usize, max_topics: usize) -> Shared {
        let config = Config {
            max_presences,
            max_topics,
            cluster: Some(ClusterConfig::new("a", "0123456789abcdef0123456789abcdef")),
            ..Config::default()
        };
        Shared::new(config, None).unwrap()
    }

    fn connections(shared: &Shared, topic: &str) -> u64 {
        shared.counts(topic).unwrap().connections
    }

    #[test]
    fn a_change_within_the_limits_is_merged_whole() {
        let shared = cluster_state(10, 10);
        let mut peer = Peer::new(1, 1);
        let changes = vec![
            TopicChange::users("a", 2, &[7]),
            TopicChange::users("b", 1, &[]),
        ];
        merge(&shared, &mut peer, changes, false).unwrap();
        assert_eq!(
            (connections(&shared, "a"), connections(&shared, "b")),
            (2, 1)
        );
        assert_eq!(shared.stats().topics, 2);
        assert_eq!(peer.held, 3);
        assert_eq!(peer.topics, HashSet::from(["a".into(), "b".into()]));
    }

    #[test]
    fn a_change_over_the_limits_changes_nothing() {
        let shared = cluster_state(3, 2);
        let mut peer = Peer::new(1, 1);
        merge(
            &shared,
            &mut peer,
            vec![TopicChange::users("a", 2, &[])],
            false,
        )
        .unwrap();
        let before = shared.stats();

        let too_many_presences = vec![
            TopicChange::users("a", 2, &[]),
            TopicChange::users("b", 2, &[]),
        ];
        assert!(merge(&shared, &mut peer, too_many_presences, false).is_err());
        let too_many_topics = vec![
            TopicChange::users("b", 0, &[5]),
            TopicChange::users("c", 0, &[6]),
        ];
        assert!(merge(&shared, &mut peer, too_many_topics, false).is_err());

        assert_eq!(shared.stats(), before);
        assert_eq!(
            (connections(&shared, "a"), connections(&shared, "b")),
            (2, 0)
        );
        assert_eq!(peer.held, 2);
        assert_eq!(peer.topics, HashSet::from(["a".into()]));
    }

    #[test]
    fn a_snapshot_replaces_what_the_peer_held() {
        let shared = cluster_state(10, 10);
        let mut peer = Peer::new(1, 1);
        merge(
            &shared,
            &mut peer,
            vec![
                TopicChange::users("a", 2, &[]),
                TopicChange::users("b", 1, &[]),
            ],
            false,
        )
        .unwrap();
        merge(
            &shared,
            &mut peer,
            vec![TopicChange::users("b", 3, &[])],
            true,
        )
        .unwrap();
        assert_eq!(
            (connections(&shared, "a"), connections(&shared, "b")),
            (0, 3)
        );
        assert_eq!(peer.held, 3);
        assert_eq!(peer.topics, HashSet::from(["b".into()]));
    }
}
