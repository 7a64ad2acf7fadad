//! Rendering of the two wire formats' payloads into a `String`.

use super::{Counts, Entry};
use crate::json;
use crate::meta;

/// `{"viewers":{"count":V},"users":{"count":U}}`: the seed's state shape, nothing more
/// (its Immutable Record rejects unknown keys).
pub(crate) fn write_counts_state(out: &mut String, c: Counts) {
    out.push_str("{\"viewers\":{\"count\":");
    json::push_u64(out, c.viewers);
    out.push_str("},\"users\":{\"count\":");
    json::push_u64(out, c.users);
    out.push_str("}}");
}

/// Net joins and leaves per group, so that before + joins - leaves = now for each group.
pub(crate) fn write_counts_diff(out: &mut String, before: Counts, now: Counts) {
    let up = |a: u64, b: u64| b.saturating_sub(a);
    out.push_str("{\"joins\":");
    write_counts_state(
        out,
        Counts {
            viewers: up(before.viewers, now.viewers),
            users: up(before.users, now.users),
            connections: 0,
        },
    );
    out.push_str(",\"leaves\":");
    write_counts_state(
        out,
        Counts {
            viewers: up(now.viewers, before.viewers),
            users: up(now.users, before.users),
            connections: 0,
        },
    );
    out.push('}');
}

/// `{"key":{"metas":[{"phx_ref":..., ...meta}, ...]}, ...}`, keys and metas in a stable
/// order (key, then ref) so equal states render to equal bytes.
pub(crate) fn write_grouped(out: &mut String, entries: &mut [&Entry], viewers_key: &str) {
    entries.sort_unstable_by(|a, b| {
        let (ka, kb) = (
            a.key.as_deref().unwrap_or(viewers_key),
            b.key.as_deref().unwrap_or(viewers_key),
        );
        ka.cmp(kb).then(a.phx_ref.cmp(&b.phx_ref))
    });
    out.push('{');
    let mut current: Option<&str> = None;
    for e in entries.iter() {
        let key = e.key.as_deref().unwrap_or(viewers_key);
        if current != Some(key) {
            if current.is_some() {
                out.push_str("]},");
            }
            json::push_str(out, key);
            out.push_str(":{\"metas\":[");
            current = Some(key);
        } else {
            out.push(',');
        }
        out.push_str("{\"phx_ref\":");
        json::push_ref(out, e.phx_ref);
        if e.prev_ref != 0 {
            out.push_str(",\"phx_ref_prev\":");
            json::push_ref(out, e.prev_ref);
        }
        let members = meta::members(&e.meta);
        if !members.is_empty() {
            out.push(',');
            out.push_str(members);
        }
        out.push('}');
    }
    if current.is_some() {
        out.push_str("]}");
    }
    out.push('}');
}
