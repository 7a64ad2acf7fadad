//! A rejected call changes nothing: not the counts, not the lists, not the pending diffs,
//! not the memory held (`stats().bytes`).

use presence_core::{Config, Engine, ErrorKind, Format};

/// A call that must be refused: the error it gave, if any.
type Call = dyn Fn(&Engine) -> Option<ErrorKind>;

fn snapshot(e: &Engine, topics: &[&str]) -> String {
    let lists: Vec<_> = topics
        .iter()
        .map(|t| (e.counts(t).unwrap(), e.list(t).unwrap()))
        .collect();
    format!("{:?} {lists:?} {}", e.stats(), e.pending_topics())
}

/// Sets up `config` with `setup`, then makes each call and checks that it fails with its
/// kind and leaves everything observable as it was.
fn check(config: Config, setup: &dyn Fn(&Engine), calls: &[(&str, ErrorKind, &Call)]) {
    let format = config.format;
    let engine = Engine::new(config).unwrap();
    setup(&engine);
    let topics = ["t", "u"];
    let before = snapshot(&engine, &topics);
    for (name, kind, call) in calls {
        assert_eq!(
            call(&engine),
            Some(*kind),
            "{name} is rejected ({format:?})"
        );
        assert_eq!(
            snapshot(&engine, &topics),
            before,
            "{name} changed nothing ({format:?})"
        );
    }
    // Nothing was queued for the next poll either: it has only what `setup` did.
    let after_setup = Engine::new(Config {
        format,
        ..Config::default()
    })
    .unwrap();
    setup(&after_setup);
    assert_eq!(engine.poll_diff().len(), after_setup.poll_diff().len());
}

fn err(r: presence_core::Result<()>) -> Option<ErrorKind> {
    r.err().map(|e| e.kind())
}

#[test]
fn a_rejected_call_changes_nothing() {
    for format in [Format::Counts, Format::Phoenix] {
        let calls: [(&str, ErrorKind, &Call); 12] = [
            ("double track", ErrorKind::AlreadyTracked, &|e| {
                err(e.track("t", 1, Some("b"), None))
            }),
            ("empty key", ErrorKind::InvalidArgument, &|e| {
                err(e.track("t", 2, Some(""), None))
            }),
            ("array meta", ErrorKind::InvalidMeta, &|e| {
                err(e.track("t", 2, Some("b"), Some("[1]")))
            }),
            ("non-finite meta number", ErrorKind::InvalidMeta, &|e| {
                err(e.track("t", 2, Some("b"), Some(r#"{"f":1e400}"#)))
            }),
            ("lone surrogate in a meta", ErrorKind::InvalidMeta, &|e| {
                err(e.track("t", 2, Some("b"), Some(r#"{"s":"\ud800"}"#)))
            }),
            ("untrack unknown conn", ErrorKind::NotTracked, &|e| {
                err(e.untrack("t", 2))
            }),
            ("untrack unknown topic", ErrorKind::NotTracked, &|e| {
                err(e.untrack("u", 1))
            }),
            ("update unknown", ErrorKind::NotTracked, &|e| {
                err(e.update("t", 2, None))
            }),
            ("reserved meta key", ErrorKind::InvalidMeta, &|e| {
                err(e.update("t", 1, Some(r#"{"phx_ref":1}"#)))
            }),
            (
                "update with a non-finite number",
                ErrorKind::InvalidMeta,
                &|e| err(e.update("t", 1, Some(r#"{"a":[-1E999]}"#))),
            ),
            (
                "update with a lone surrogate",
                ErrorKind::InvalidMeta,
                &|e| err(e.update("t", 1, Some(r#"{"\udc00":1}"#))),
            ),
            ("topic too long", ErrorKind::TooLong, &|e| {
                err(e.track(&"t".repeat(257), 2, None, None))
            }),
        ];
        let config = Config {
            format,
            ..Config::default()
        };
        check(
            config,
            &|e| {
                e.track("t", 1, Some("a"), None).unwrap();
                e.poll_diff();
            },
            &calls,
        );
    }
}

/// One shard, and as many connections as its index holds before it must grow (three of
/// four slots): a track refused after the index was looked up must not have grown it.
fn full_index(format: Format, max_presences: usize, max_topics: usize) -> Config {
    Config {
        format,
        shards: 1,
        max_presences,
        max_topics,
        ..Config::default()
    }
}

fn three_connections(e: &Engine) {
    for conn in 1..=3 {
        e.track("t", conn, Some("a"), Some(r#"{"n":1}"#)).unwrap();
    }
}

#[test]
fn a_refused_track_does_not_grow_the_connection_index() {
    for format in [Format::Counts, Format::Phoenix] {
        check(
            full_index(format, 3, 10),
            &three_connections,
            &[
                ("double track", ErrorKind::AlreadyTracked, &|e| {
                    err(e.track("t", 3, None, None))
                }),
                ("one presence too many", ErrorKind::LimitReached, &|e| {
                    err(e.track("t", 4, None, None))
                }),
                (
                    "one presence too many, new topic",
                    ErrorKind::LimitReached,
                    &|e| err(e.track("u", 4, None, None)),
                ),
            ],
        );
        check(
            full_index(format, 10, 1),
            &three_connections,
            &[("one topic too many", ErrorKind::LimitReached, &|e| {
                err(e.track("u", 4, Some("b"), None))
            })],
        );
    }
}

/// The same limits still let a track in once there is room: the refusals above were
/// about the limit, not about the index.
#[test]
fn a_track_after_a_refusal_succeeds_once_there_is_room() {
    let e = Engine::new(full_index(Format::Phoenix, 3, 10)).unwrap();
    three_connections(&e);
    assert_eq!(
        err(e.track("t", 4, None, None)),
        Some(ErrorKind::LimitReached)
    );
    e.untrack("t", 1).unwrap();
    e.track("t", 4, None, None).unwrap();
    assert_eq!(e.counts("t").unwrap().connections, 3);
}

#[test]
fn reads_refuse_the_names_tracks_refuse_with_the_same_error() {
    for format in [Format::Counts, Format::Phoenix] {
        let engine = Engine::new(Config {
            format,
            max_topic_bytes: 8,
            ..Config::default()
        })
        .unwrap();
        // Held topics whose names the refused ones start like: a read must not find
        // them instead of refusing.
        engine.track("t", 1, None, None).unwrap();
        engine.track("much-too", 2, None, None).unwrap();
        let long_with_nul = format!("{}\0", "x".repeat(20));
        for name in [
            "",
            "t\0",
            "\0",
            "much-too-long",
            "t\0\0\0\0\0\0\0\0",
            &long_with_nul,
        ] {
            let refused = engine.track(name, 9, None, None).unwrap_err();
            for (call, e) in [
                ("counts", engine.counts(name).unwrap_err()),
                ("list", engine.list(name).unwrap_err()),
                ("counts_many", engine.counts_many(&["t", name]).unwrap_err()),
            ] {
                assert_eq!(e.kind(), refused.kind(), "{format:?} {call}({name:?})");
                assert_eq!(
                    e.message().trim_start_matches("topics[1]: "),
                    refused.message(),
                    "{format:?} {call}({name:?})"
                );
            }
        }
        // Names that are fine but held by nothing read as empty.
        assert_eq!(engine.counts("u").unwrap(), Default::default());
        assert_eq!(engine.counts("t").unwrap().connections, 1);
    }
}
