//! The coordinator's side of the cluster benchmarks: node processes (this same binary as
//! `presence-cluster node`) started, driven line by line over their stdin, and waited on
//! until they report the counts wanted, which is what every timed figure measures.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A node process.
pub struct Node {
    pub name: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// How a cluster's nodes are configured.
#[derive(Clone)]
pub struct Setup {
    pub url: String,
    pub channel: String,
    pub format: &'static str,
    pub tick_ms: u64,
    pub down_after_ms: u64,
    pub snapshot_ms: u64,
}

impl Node {
    pub fn start(name: &str, s: &Setup) -> Node {
        let exe = std::env::current_exe().expect("own path");
        let mut child = Command::new(exe)
            .arg("node")
            .args(["--node", name, "--url", &s.url, "--channel", &s.channel])
            .args(["--format", s.format])
            .args(["--tick-ms", &s.tick_ms.to_string()])
            .args(["--down-after-ms", &s.down_after_ms.to_string()])
            .args(["--snapshot-interval-ms", &s.snapshot_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starts a node process");
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        Node {
            name: name.to_owned(),
            child,
            stdin,
            stdout,
        }
    }

    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}")
            .and_then(|_| self.stdin.flush())
            .unwrap_or_else(|e| panic!("node {}: {line}: {e}", self.name));
    }

    pub fn recv(&mut self) -> Value {
        let mut answer = String::new();
        self.stdout
            .read_line(&mut answer)
            .unwrap_or_else(|e| panic!("node {}: {e}", self.name));
        serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("node {}: {answer:?}: {e}", self.name))
    }

    pub fn ask(&mut self, line: &str) -> Value {
        self.send(line);
        self.recv()
    }

    /// Sends a command that must succeed.
    pub fn ok(&mut self, line: &str) -> Value {
        let v = self.ask(line);
        assert_eq!(v["ok"], true, "node {}: {line} -> {v}", self.name);
        v
    }

    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL"); // no goodbye
        self.child.wait().expect("reaped");
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
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `names` and waits until each sees all the others.
pub fn start_cluster(names: &[&str], s: &Setup) -> Vec<Node> {
    let mut nodes: Vec<Node> = names.iter().map(|n| Node::start(n, s)).collect();
    let others = names.len() - 1;
    for n in &mut nodes {
        n.ok(&format!("peers {others} 20000"));
    }
    nodes
}

pub fn expect_line(timeout_ms: u64, want: &BTreeMap<String, [u64; 3]>) -> String {
    format!(
        "expect {timeout_ms} {}",
        serde_json::to_string(want).expect("json")
    )
}

pub fn one(topic: &str, c: [u64; 3]) -> BTreeMap<String, [u64; 3]> {
    BTreeMap::from([(topic.to_owned(), c)])
}

pub fn at(v: &Value) -> u64 {
    v["at"].as_u64().expect("an `at` time")
}

/// Sends `expect` to every node of `nodes`, runs `act` (which returns the start time), and
/// returns the delay until each node saw the counts.
pub fn timed(
    nodes: &mut [&mut Node],
    want: &BTreeMap<String, [u64; 3]>,
    timeout_ms: u64,
    act: impl FnOnce() -> u64,
) -> Vec<u64> {
    let line = expect_line(timeout_ms, want);
    for n in nodes.iter_mut() {
        n.send(&line);
    }
    let t0 = act();
    nodes
        .iter_mut()
        .map(|n| {
            let v = n.recv();
            assert_eq!(v["ok"], true, "node {} did not converge: {v}", n.name);
            at(&v).saturating_sub(t0)
        })
        .collect()
}

/// Waits until every node reports the same counts for every topic (the cluster has
/// converged); panics after 30 s.
pub fn settle(nodes: &mut [Node], topics: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen: Vec<Value> = nodes
            .iter_mut()
            .map(|n| n.ask(&format!("digest {topics}")))
            .collect();
        if seen.windows(2).all(|w| w[0] == w[1]) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no convergence in 30 s: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Exits with an error if any node refused a message: a benchmark cluster sees no forgery.
pub fn check_rejections(nodes: &mut [Node]) {
    for n in nodes {
        let s = n.ask("stats");
        if s["rejected"].as_u64() != Some(0) {
            eprintln!("error: node {} refused messages: {s}", n.name);
            std::process::exit(1);
        }
    }
}
