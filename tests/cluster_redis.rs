//! Nodes as separate processes, sharing presence over a real redis-server that these
//! tests start on a loopback port (`make test` installs redis-server). Covers convergence,
//! `kill -9` of a node, its restart, Redis outages and a Redis that stops answering (no
//! peer is dropped for either, and a stop never hangs), a node suspended and resumed, what
//! a cold node's arrival costs the others, TLS with AUTH, and what a bystander on the
//! channel can see.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const TICK_MS: u64 = 50;
const DOWN_AFTER_MS: u64 = 1000;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(port: u16) -> Redis {
        Redis::start_with(port, &["--port", &port.to_string()])
    }

    /// A server listening on `port` as `args` say (plain or TLS), saving nothing.
    fn start_with(port: u16, args: &[&str]) -> Redis {
        let child = Command::new("redis-server")
            .args(args)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (make test installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// SIGSTOP: the server keeps its connections open but answers nothing, like a host
    /// behind a partition that sends no resets.
    fn pause(&self) {
        signal(&self.child, libc::SIGSTOP);
    }

    fn resume(&self) {
        signal(&self.child, libc::SIGCONT);
    }
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Node {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn node_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("cluster-node")
}

impl Node {
    fn start(name: &str, redis: &str, channel: &str) -> Node {
        Node::start_with(name, redis, channel, &[])
    }

    fn start_with(name: &str, redis: &str, channel: &str, args: &[&str]) -> Node {
        let mut child = Command::new(node_binary())
            .args(["--node", name, "--redis", redis, "--channel", channel])
            .args(args)
            .args([
                "--tick-ms",
                &TICK_MS.to_string(),
                "--down-after-ms",
                &DOWN_AFTER_MS.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cargo builds the cluster-node example with the tests");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Node {
            child,
            stdin,
            stdout,
        }
    }

    fn ask(&mut self, line: &str) -> serde_json::Value {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{line} -> {answer:?}: {e}"))
    }

    fn counts(&mut self, topic: &str) -> (u64, u64, u64) {
        let c = self.ask(&format!("counts {topic}"));
        (
            c["viewers"].as_u64().unwrap(),
            c["users"].as_u64().unwrap(),
            c["connections"].as_u64().unwrap(),
        )
    }

    fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL: no goodbye
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until every node reports `want` for `topic`; returns how long it took.
fn converge(
    nodes: &mut [&mut Node],
    topic: &str,
    want: (u64, u64, u64),
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let seen: Vec<_> = nodes.iter_mut().map(|n| n.counts(topic)).collect();
        if seen.iter().all(|c| *c == want) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "no convergence to {want:?} within {limit:?}: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn three_processes_converge_survive_kill_restart_and_a_redis_outage() {
    let redis = Redis::start(free_port());
    let url = redis.url();
    let channel = "presence-test";
    let (mut a, mut b, mut c) = (
        Node::start("a", &url, channel),
        Node::start("b", &url, channel),
        Node::start("c", &url, channel),
    );

    // alice on all three nodes, bob on a and c, two anonymous viewers on b, one on c.
    for (n, cmds) in [
        (
            &mut a,
            &["track video:1 1 alice", "track video:1 2 bob"][..],
        ),
        (
            &mut b,
            &[
                "track video:1 1 alice",
                "track video:1 2",
                "track video:1 3",
            ][..],
        ),
        (
            &mut c,
            &[
                "track video:1 1 alice",
                "track video:1 2 bob",
                "track video:1 3",
            ][..],
        ),
    ] {
        for cmd in cmds {
            assert_eq!(n.ask(cmd)["ok"], true, "{cmd}");
        }
    }
    let bound = Duration::from_millis(20 * TICK_MS);
    let took = converge(&mut [&mut a, &mut b, &mut c], "video:1", (3, 2, 8), bound);
    println!("3 nodes converged in {took:?} (bound {bound:?})");

    // kill -9 c: the others drop its presences within down_after plus a tick or two.
    c.kill9();
    let killed = Instant::now();
    let bound = Duration::from_millis(DOWN_AFTER_MS + 4 * TICK_MS);
    converge(
        &mut [&mut a, &mut b],
        "video:1",
        (2, 2, 5),
        bound + Duration::from_millis(500),
    );
    let dropped = killed.elapsed();
    println!("a killed node was dropped after {dropped:?} (down_after {DOWN_AFTER_MS} ms)");
    assert!(
        dropped >= Duration::from_millis(DOWN_AFTER_MS - 2 * TICK_MS),
        "dropped too early: {dropped:?}"
    );

    // c restarts with a new incarnation; its presences come back.
    let mut c = Node::start("c", &url, channel);
    assert!(c.ask("stats")["incarnation"].as_u64().unwrap() > 0);
    c.ask("track video:1 7 carol");
    let took = converge(
        &mut [&mut a, &mut b, &mut c],
        "video:1",
        (2, 3, 6),
        Duration::from_millis(20 * TICK_MS),
    );
    println!("a restarted node rejoined in {took:?}");

    // Redis goes away for 3 s (longer than down_after), then comes back on the same port.
    drop(redis);
    std::thread::sleep(Duration::from_millis(3000));
    b.ask("track video:1 9 dave"); // a change made while the bus is down
    let redis = Redis::start(free_port_reuse(&url));
    let took = converge(
        &mut [&mut a, &mut b, &mut c],
        "video:1",
        (2, 4, 7),
        Duration::from_secs(8),
    );
    println!("after a 3 s Redis outage the nodes reconverged {took:?} after Redis returned");

    // A clean quit is seen at once, not after down_after.
    drop(c);
    let took = converge(
        &mut [&mut a, &mut b],
        "video:1",
        (2, 3, 6),
        Duration::from_millis(DOWN_AFTER_MS / 2),
    );
    println!("a node that quit cleanly was dropped in {took:?}");
    let stats = a.ask("stats");
    assert_eq!(stats["rejected"], 0, "{stats}");
    drop(redis);
}

/// The port of a Redis URL, to restart the server where the nodes expect it.
fn free_port_reuse(url: &str) -> u16 {
    url.trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_bystander_on_the_channel_never_sees_a_user_id() {
    let redis = Redis::start(free_port());
    let channel = "presence-bystander";
    let mut spy = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    write!(
        spy,
        "*2\r\n$9\r\nSUBSCRIBE\r\n${}\r\n{channel}\r\n",
        channel.len()
    )
    .unwrap();
    let mut a = Node::start("a", &redis.url(), channel);
    let mut b = Node::start("b", &redis.url(), channel);
    a.ask("track video:1 1 alice-secret-id");
    b.ask("track video:1 1 bob-secret-id");
    converge(
        &mut [&mut a, &mut b],
        "video:1",
        (0, 2, 2),
        Duration::from_secs(3),
    );
    a.ask("untrack_conn 1");
    converge(
        &mut [&mut a, &mut b],
        "video:1",
        (0, 1, 1),
        Duration::from_secs(3),
    );
    drop(a);
    drop(b);
    spy.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = spy.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        seen.len() > 200,
        "the spy saw the traffic ({} bytes)",
        seen.len()
    );
    assert!(seen.windows(7).any(|w| w == b"video:1"), "topics do travel");
    for id in [&b"alice-secret-id"[..], b"bob-secret-id"] {
        assert!(
            !seen.windows(id.len()).any(|w| w == id),
            "a user id travelled in counts format"
        );
    }
}

impl Node {
    fn stats(&mut self) -> serde_json::Value {
        self.ask("stats")
    }

    /// Topics changed since the last poll, as a client of this node would see them.
    fn poll(&mut self) -> u64 {
        self.ask("poll")["diffs"].as_u64().unwrap()
    }

    fn pause(&self) {
        signal(&self.child, libc::SIGSTOP);
    }

    fn resume(&self) {
        signal(&self.child, libc::SIGCONT);
    }
}

/// Polls `check` on `node` until it holds; returns how long it took.
fn wait_until(
    node: &mut Node,
    limit: Duration,
    what: &str,
    mut check: impl FnMut(&serde_json::Value) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let stats = node.stats();
        if check(&stats) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{what}: not within {limit:?}: {stats}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_redis_that_stops_answering_is_noticed_keeps_peers_and_never_blocks_a_stop() {
    let redis = Redis::start(free_port());
    let channel = "presence-paused";
    let mut nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| Node::start(n, &redis.url(), channel))
        .collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        n.ask(&format!("track video:1 1 user-{i}"));
    }
    let mut refs: Vec<&mut Node> = nodes.iter_mut().collect();
    converge(&mut refs, "video:1", (0, 3, 3), Duration::from_secs(5));
    for n in nodes.iter_mut() {
        n.poll();
    }

    redis.pause();
    let paused = Instant::now();
    let noticed = wait_until(&mut nodes[0], Duration::from_secs(5), "link down", |s| {
        s["link_up"] == false
    });
    println!("a paused Redis was noticed after {noticed:?} (tick {TICK_MS} ms, I/O timeout 1 s)");
    assert!(
        noticed < Duration::from_millis(TICK_MS + 2500),
        "noticed after {noticed:?}"
    );
    // Well past down_after, nobody is dropped: the peers are held, stale.
    std::thread::sleep(Duration::from_millis(2 * DOWN_AFTER_MS).saturating_sub(paused.elapsed()));
    for n in nodes.iter_mut() {
        let s = n.stats();
        assert_eq!(
            (s["nodes"].clone(), s["stale_nodes"].clone()),
            (2.into(), 2.into()),
            "{s}"
        );
        assert_eq!(s["nodes_dropped"], 0, "{s}");
        assert_eq!(n.counts("video:1"), (0, 3, 3));
        assert_eq!(n.poll(), 0, "a client saw a change");
    }

    // Stopping the link, or closing the engine, returns while Redis still answers nothing.
    let took = nodes[2].ask("stop_redis")["ms"].as_u64().unwrap();
    println!("stop_redis took {took} ms during a Redis pause");
    assert!(took <= 1500, "stop_redis blocked for {took} ms");
    let mut b = nodes.remove(1);
    let quit = Instant::now();
    writeln!(b.stdin, "quit").unwrap();
    b.stdin.flush().unwrap();
    let status = b.child.wait().unwrap();
    let closed = quit.elapsed();
    println!("closing the engine took {closed:?} during a Redis pause");
    assert!(status.success());
    assert!(
        closed < Duration::from_millis(1500),
        "close blocked for {closed:?}"
    );

    // Redis answers again: the link comes back, and the departures queued meanwhile land.
    redis.resume();
    let back = wait_until(&mut nodes[0], Duration::from_secs(5), "link up", |s| {
        s["link_up"] == true && s["stale_nodes"] == 0
    });
    println!("the link was back {back:?} after Redis resumed");
    converge(
        &mut [&mut nodes[0]],
        "video:1",
        (0, 1, 1),
        Duration::from_secs(5),
    );
}

/// Outages of `secs` seconds: no client sees a live peer leave and come back, and a change
/// made during the outage arrives once Redis is back.
fn outage_without_drops(secs: u64) {
    let port = free_port();
    let redis = Redis::start(port);
    let channel = "presence-outage";
    let mut nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| Node::start(n, &redis.url(), channel))
        .collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        n.ask(&format!("track video:1 1 user-{i}"));
        n.ask("track video:1 2");
    }
    let mut refs: Vec<&mut Node> = nodes.iter_mut().collect();
    converge(&mut refs, "video:1", (3, 3, 6), Duration::from_secs(5));
    for n in nodes.iter_mut() {
        n.poll();
    }

    drop(redis);
    let down = Instant::now();
    nodes[1].ask("track video:2 9 dave"); // a change made while the bus is down
    while down.elapsed() < Duration::from_secs(secs) {
        for n in nodes.iter_mut() {
            assert_eq!(n.counts("video:1"), (3, 3, 6), "a peer was dropped");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let stats = nodes[0].stats();
    assert_eq!(
        (stats["link_up"].clone(), stats["stale_nodes"].clone()),
        (false.into(), 2.into()),
        "{stats}"
    );
    let redis = Redis::start(port);
    let mut refs: Vec<&mut Node> = nodes.iter_mut().collect();
    let took = converge(&mut refs, "video:2", (0, 1, 1), Duration::from_secs(5));
    println!("after a {secs} s Redis outage the nodes converged {took:?} after Redis returned");
    for n in nodes.iter_mut() {
        let s = n.stats();
        assert_eq!(s["nodes_dropped"], 0, "{s}");
        assert_eq!(n.counts("video:1"), (3, 3, 6));
        // Only the change made during the outage reaches the clients: video:2, not video:1.
        assert_eq!(n.poll(), 1, "a client saw more than dave's arrival");
    }
    // The link is healthy again: a later change travels as usual.
    nodes[2].ask("untrack video:1 2");
    let mut refs: Vec<&mut Node> = nodes.iter_mut().collect();
    converge(&mut refs, "video:1", (2, 3, 5), Duration::from_secs(3));
    drop(redis);
}

#[test]
fn a_2_s_redis_outage_drops_no_peer() {
    outage_without_drops(2);
}

#[test]
fn a_10_s_redis_outage_drops_no_peer() {
    outage_without_drops(10);
}

#[test]
fn an_outage_longer_than_stale_after_drops_the_peers_until_redis_returns() {
    let port = free_port();
    let redis = Redis::start(port);
    let channel = "presence-stale";
    let args = ["--stale-after-ms", "1500"];
    let mut a = Node::start_with("a", &redis.url(), channel, &args);
    let mut b = Node::start_with("b", &redis.url(), channel, &args);
    a.ask("track video:1 1 alice");
    b.ask("track video:1 1 bob");
    converge(
        &mut [&mut a, &mut b],
        "video:1",
        (0, 2, 2),
        Duration::from_secs(5),
    );
    drop(redis);
    converge(&mut [&mut a], "video:1", (0, 1, 1), Duration::from_secs(5));
    let s = a.stats();
    assert_eq!(
        (s["nodes"].clone(), s["nodes_dropped"].clone()),
        (0.into(), 1.into()),
        "{s}"
    );
    let _redis = Redis::start(port);
    let took = converge(
        &mut [&mut a, &mut b],
        "video:1",
        (0, 2, 2),
        Duration::from_secs(5),
    );
    println!("after an outage past stale_after the nodes reconverged in {took:?}");
}

#[test]
fn a_node_resumed_after_sigstop_keeps_its_peers() {
    let redis = Redis::start(free_port());
    let channel = "presence-sigstop";
    let mut a = Node::start("a", &redis.url(), channel);
    let mut b = Node::start("b", &redis.url(), channel);
    a.ask("track video:1 1 alice");
    b.ask("track video:1 1 bob");
    converge(
        &mut [&mut a, &mut b],
        "video:1",
        (0, 2, 2),
        Duration::from_secs(5),
    );
    a.poll();

    a.pause(); // well past down_after: b drops a, which answered nothing meanwhile
    std::thread::sleep(Duration::from_millis(3 * DOWN_AFTER_MS));
    a.resume();
    // a ran its overdue tick first, but kept b: its clients see nothing change.
    assert_eq!(a.counts("video:1"), (0, 2, 2));
    let took = converge(
        &mut [&mut a, &mut b],
        "video:1",
        (0, 2, 2),
        Duration::from_secs(5),
    );
    println!("after a resumed from a pause, both nodes agreed again in {took:?}");
    std::thread::sleep(Duration::from_millis(DOWN_AFTER_MS + 5 * TICK_MS));
    let s = a.stats();
    assert_eq!(
        (s["nodes"].clone(), s["nodes_dropped"].clone()),
        (1.into(), 0.into()),
        "{s}"
    );
    assert_eq!(a.poll(), 0, "a's clients saw b leave or come back");
    assert_eq!(
        b.stats()["nodes_dropped"],
        1,
        "b did drop a, silent for 3 s"
    );
}

#[test]
fn a_cold_node_costs_the_others_no_snapshot_and_an_idle_node_little() {
    let redis = Redis::start(free_port());
    let channel = "presence-cold";
    let (topics, per_topic) = (10, 2500); // 25k presences per node
    let mut nodes: Vec<Node> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| Node::start(n, &redis.url(), channel))
        .collect();
    for n in nodes.iter_mut() {
        assert_eq!(n.ask(&format!("fill {topics} {per_topic}"))["ok"], true);
    }
    let mut refs: Vec<&mut Node> = nodes.iter_mut().collect();
    converge(
        &mut refs,
        "fill:3",
        (0, 4 * per_topic, 4 * per_topic),
        Duration::from_secs(20),
    );

    // Idle: what one node publishes per second once nothing changes.
    std::thread::sleep(Duration::from_millis(500));
    let before = nodes[0].stats()["bytes_sent"].as_u64().unwrap();
    let idle = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let sent = nodes[0].stats()["bytes_sent"].as_u64().unwrap() - before;
    let per_s = sent as f64 / idle.elapsed().as_secs_f64();
    println!("idle: {per_s:.0} bytes/s published per node (tick {TICK_MS} ms)");

    // A cold node arrives: every node sends it a snapshot, on its own channel.
    let received = |nodes: &mut [Node]| -> Vec<u64> {
        nodes
            .iter_mut()
            .map(|n| n.stats()["bytes_received"].as_u64().unwrap())
            .collect()
    };
    let before = received(&mut nodes);
    let started = Instant::now();
    let mut cold = Node::start("cold", &redis.url(), channel);
    let took = converge(
        &mut [&mut cold],
        "fill:3",
        (0, 4 * per_topic, 4 * per_topic),
        Duration::from_secs(20),
    );
    let elapsed = started.elapsed().as_secs_f64();
    let after = received(&mut nodes);
    let cold_received = cold.stats()["bytes_received"].as_u64().unwrap();
    println!("a cold node received {cold_received} bytes and converged in {took:?}");
    let snapshot = per_topic * topics * 8; // one node's user hashes
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        let cost = a - b;
        let idle_share = (per_s * 5.0 * elapsed) as u64; // heartbeats of 4 nodes + the echo
        println!(
            "node {i} received {cost} bytes during the arrival ({:.1} s; idle traffic alone ~{idle_share})",
            elapsed
        );
        assert!(
            cost < snapshot / 4,
            "node {i} received {cost} bytes: someone's snapshot ({snapshot} bytes) reached it"
        );
    }
    assert!(
        cold_received >= 4 * snapshot,
        "the cold node got every snapshot"
    );
}

/// A self-signed CA and a server certificate for 127.0.0.1, made with openssl.
fn tls_files(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl is installed");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=presence test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
}

#[test]
fn tls_with_a_private_ca_and_an_acl_user_works_and_a_wrong_password_never_links() {
    let dir = std::env::temp_dir().join(format!("presence-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    tls_files(&dir);
    let file = |name: &str| dir.join(name).to_str().unwrap().to_owned();
    let port = free_port();
    let redis = Redis::start_with(
        port,
        &[
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &file("server.pem"),
            "--tls-key-file",
            &file("server.key"),
            "--tls-ca-cert-file",
            &file("ca.pem"),
            "--tls-auth-clients",
            "no",
            "--requirepass",
            "default-password",
            "--user",
            "presence",
            "on",
            ">user-password",
            "~*",
            "&*",
            "+@all",
        ],
    );
    let ca = file("ca.pem");
    let url = |auth: &str| format!("rediss://{auth}@127.0.0.1:{}/?ca_file={ca}", redis.port);
    let channel = "presence-tls";
    let mut a = Node::start("a", &url("presence:user-password"), channel);
    let mut b = Node::start("b", &url(":default-password"), channel);
    let mut wrong = Node::start("w", &url("presence:wrong"), channel);
    a.ask("track video:1 1 alice");
    b.ask("track video:1 1 bob");
    wrong.ask("track video:1 1 eve");
    let took = converge(
        &mut [&mut a, &mut b],
        "video:1",
        (0, 2, 2),
        Duration::from_secs(5),
    );
    println!("two nodes over TLS with AUTH converged in {took:?}");
    let s = wrong.stats();
    assert_eq!(
        (s["link_up"].clone(), s["nodes"].clone()),
        (false.into(), 0.into()),
        "{s}"
    );
    assert_eq!(wrong.counts("video:1"), (0, 1, 1));
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sentinel_url_follows_the_primary_through_a_failover() {
    let dir = std::env::temp_dir().join(format!("presence-sentinel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let primary = Redis::start(free_port());
    let replica_port = free_port();
    let primary_port = primary.port.to_string();
    let _replica = Redis::start_with(
        replica_port,
        &[
            "--port",
            &replica_port.to_string(),
            "--replicaof",
            "127.0.0.1",
            &primary_port,
        ],
    );
    let sentinel_port = free_port();
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {sentinel_port}\nbind 127.0.0.1\ndir {}\n\
             sentinel monitor svc 127.0.0.1 {primary_port} 1\n\
             sentinel down-after-milliseconds svc 500\nsentinel failover-timeout svc 5000\n",
            dir.display()
        ),
    )
    .unwrap();
    let sentinel = Command::new("redis-server")
        .arg(&conf)
        .arg("--sentinel")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server runs as a sentinel too");
    let sentinel = Redis {
        child: sentinel,
        port: sentinel_port,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", sentinel_port)).is_err() {
        assert!(Instant::now() < deadline, "the sentinel did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("redis://127.0.0.1:{sentinel_port}/?sentinel=svc");
    let channel = "presence-sentinel";
    let mut a = Node::start("a", &url, channel);
    let mut b = Node::start("b", &url, channel);
    a.ask("track video:1 1 alice");
    b.ask("track video:1 1 bob");
    converge(
        &mut [&mut a, &mut b],
        "video:1",
        (0, 2, 2),
        Duration::from_secs(5),
    );

    // The primary dies; the sentinel promotes the replica, and the links find it.
    drop(primary);
    let failed = Instant::now();
    b.ask("track video:1 2 carol");
    let took = converge(
        &mut [&mut a, &mut b],
        "video:1",
        (0, 3, 3),
        Duration::from_secs(30),
    );
    println!("after the primary died the nodes agreed again {took:?} later, through the promoted replica");
    assert!(failed.elapsed() < Duration::from_secs(30));
    assert_eq!(
        a.stats()["nodes_dropped"],
        0,
        "the failover took less than stale_after"
    );
    drop(sentinel);
    let _ = std::fs::remove_dir_all(&dir);
}
