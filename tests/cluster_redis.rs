//! Three nodes as separate processes, sharing presence over a real redis-server that this
//! test starts on a loopback port (`make test` installs redis-server). Covers convergence,
//! `kill -9` of a node, its restart, a Redis outage, and what a bystander on the channel
//! can see.

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
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
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
        let mut child = Command::new(node_binary())
            .args(["--node", name, "--redis", redis, "--channel", channel])
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
