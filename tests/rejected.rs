//! A rejected call changes nothing: not the counts, not the lists, not the memory held.

use presence::{Config, Engine, Format};

/// A call that must be refused: true when it was.
type Call = dyn Fn(&Engine) -> bool;

fn check(format: Format) {
    let engine = Engine::new(Config {
        format,
        ..Config::default()
    })
    .unwrap();
    engine.track("t", 1, Some("a"), None).unwrap();
    engine.poll_diff();
    let snapshot = |e: &Engine| (e.counts("t").unwrap(), e.stats(), e.list("t").unwrap().json);
    let before = snapshot(&engine);
    let calls: [(&str, &Call); 7] = [
        ("double track", &|e| {
            e.track("t", 1, Some("b"), None).is_err()
        }),
        ("empty key", &|e| e.track("t", 2, Some(""), None).is_err()),
        ("array meta", &|e| {
            e.track("t", 2, Some("b"), Some("[1]")).is_err()
        }),
        ("untrack unknown conn", &|e| e.untrack("t", 2).is_err()),
        ("untrack unknown topic", &|e| e.untrack("u", 1).is_err()),
        ("update unknown", &|e| e.update("t", 2, None).is_err()),
        ("reserved meta key", &|e| {
            e.update("t", 1, Some(r#"{"phx_ref":1}"#)).is_err()
        }),
    ];
    for (name, call) in calls {
        assert!(call(&engine), "{name} is rejected");
        assert_eq!(
            snapshot(&engine),
            before,
            "{name} changed nothing ({format:?})"
        );
    }
    assert!(engine.poll_diff().is_empty());
}

#[test]
fn a_rejected_call_changes_nothing() {
    check(Format::Counts);
    check(Format::Phoenix);
}
