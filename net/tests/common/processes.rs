//! Real processes for the cluster tests: a throwaway etcd (through `scripts/etcd.sh run`) and
//! member processes of the `cluster` example, each of which can be frozen (SIGSTOP), thawed
//! (SIGCONT) and killed (SIGKILL).
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The workspace root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the pid of a child this process started and has not reaped.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// Stops `child` (SIGSTOP) and returns once every one of its threads is stopped (or after five
/// seconds): a thread running on another CPU when the signal is sent goes on until it next
/// enters the kernel, so "frozen" is a point in time only once the kernel says so.
fn stop(child: &Child) {
    signal(child, libc::SIGSTOP);
    let tasks = PathBuf::from(format!("/proc/{}/task", child.id()));
    let stopped = |t: std::io::Result<std::fs::DirEntry>| {
        let stat = t.ok().and_then(|t| std::fs::read_to_string(t.path().join("stat")).ok());
        // The state follows the command name, which is in parentheses and may hold spaces.
        stat.and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with(['T', 't']))).unwrap_or(true)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let Ok(mut all) = std::fs::read_dir(&tasks) else { return };
        if all.all(stopped) {
            return;
        }
        std::thread::yield_now();
    }
}

/// An etcd server on loopback, its data in a temp dir; stopped and deleted on drop.
pub struct Etcd {
    child: Option<Child>,
    dir: PathBuf,
    pub port: u16,
    peer: u16,
}

impl Etcd {
    pub fn start() -> Etcd {
        let dir = std::env::temp_dir().join(format!("corelane-etcd-{}-{}", std::process::id(), free_port()));
        let mut e = Etcd { child: None, dir, port: free_port(), peer: free_port() };
        e.launch();
        e
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let child = Command::new("bash")
            .arg(root().join("scripts/etcd.sh"))
            .args(["run", self.dir.to_str().unwrap(), &self.port.to_string(), &self.peer.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("scripts/etcd.sh run");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.healthy() {
            assert!(Instant::now() < deadline, "etcd did not become healthy on port {}", self.port);
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    fn healthy(&self) -> bool {
        use std::io::Read;
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        if s.write_all(b"GET /health HTTP/1.0\r\n\r\n").is_err() {
            return false;
        }
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.contains("\"health\":\"true\"")
    }

    pub fn freeze(&self) {
        stop(self.child.as_ref().unwrap());
    }

    pub fn thaw(&self) {
        signal(self.child.as_ref().unwrap(), libc::SIGCONT);
    }

    /// Kills it (its data stays).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            signal(c, libc::SIGCONT);
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `cluster` example binary, brought up to date once per test process (a test run of one
/// test target does not build the examples; an old binary would test old code).
pub fn cluster_example() -> PathBuf {
    example("cluster")
}

/// The example `name` of corelane-net (with the `etcd` feature), built once per test process.
pub fn example(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = profile_dir.join("examples").join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-q", "-p", "corelane-net", "--features", "etcd", "--example", name]);
        if profile_dir.ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.status().unwrap();
        assert!(status.success(), "building the example {name}");
        built.push(name.to_string());
    }
    bin
}

/// This test process as member `client` of cluster `name` on `etcd` (through `node`), hosting
/// what `node` registered and no grain.
#[cfg(feature = "etcd")]
pub fn join_as_client(
    etcd: &Etcd,
    name: &str,
    node: &corelane_net::Node,
    ttl_ms: u64,
) -> corelane_net::cluster::Cluster {
    corelane_net::cluster::Cluster::builder(name)
        .ttl(Duration::from_millis(ttl_ms))
        .member_id("client")
        .join(node, corelane_net::cluster::EtcdProvider::new([etcd.endpoint()]))
        .expect("the client joins")
}

/// Members `a`, `b` and `c` of cluster `name`, each writing its ledger in a fresh directory;
/// the processes and their ledgers' paths. All three have the role `worker`; `a` and `c` also
/// `risk`.
pub fn three_members(etcd: &Etcd, name: &str, ttl_ms: u64) -> (Vec<MemberProcess>, Vec<std::path::PathBuf>) {
    let dir = std::env::temp_dir().join(format!("corelane-ledger-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ids = ["a", "b", "c"];
    let ledgers: Vec<std::path::PathBuf> = ids.iter().map(|id| dir.join(format!("{id}.ledger"))).collect();
    let members = ids
        .iter()
        .zip(&ledgers)
        .map(|(id, l)| {
            let roles = if *id == "b" { "worker" } else { "worker,risk" };
            MemberProcess::start_with_roles(etcd, name, id, ttl_ms, Some(l), roles)
        })
        .collect();
    (members, ledgers)
}

/// A member process (`cluster node`): commands on its stdin, answers from its stdout.
pub struct MemberProcess {
    pub id: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pub addr: String,
}

impl MemberProcess {
    pub fn start(
        etcd: &Etcd,
        cluster: &str,
        id: &str,
        ttl_ms: u64,
        ledger: Option<&std::path::Path>,
    ) -> Self {
        Self::start_with_roles(etcd, cluster, id, ttl_ms, ledger, "")
    }

    /// As `start`, the member advertising `roles` (comma-separated).
    pub fn start_with_roles(
        etcd: &Etcd,
        cluster: &str,
        id: &str,
        ttl_ms: u64,
        ledger: Option<&std::path::Path>,
        roles: &str,
    ) -> Self {
        let mut cmd = Command::new(cluster_example());
        cmd.args(["node", &etcd.endpoint(), cluster, id, &ttl_ms.to_string()]);
        cmd.env("CLUSTER_ROLES", roles);
        if let Some(l) = ledger {
            cmd.arg(l);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("member process");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut m = MemberProcess { id: id.to_string(), child, stdin, lines, addr: String::new() };
        let ready = m.line(Duration::from_secs(30)).expect("the member says it is ready");
        m.addr = ready.split_whitespace().nth(1).expect("ready <addr>").to_string();
        m
    }

    /// The next line it prints, if one comes within `d`.
    pub fn line(&self, d: Duration) -> Option<String> {
        match self.lines.recv_timeout(d) {
            Ok(l) => Some(l),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Sends a command without waiting for its answer.
    pub fn command(&mut self, command: &str) -> Option<()> {
        let stdin = self.stdin.as_mut()?;
        writeln!(stdin, "{command}").ok()?;
        stdin.flush().ok()
    }

    /// Waits for the first line starting with `answer`.
    pub fn expect(&mut self, answer: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let l = self.line(deadline.saturating_duration_since(Instant::now()))?;
            if l.starts_with(answer) {
                return Some(l);
            }
        }
        None
    }

    /// Sends a command and returns the first line starting with `answer`.
    pub fn ask(&mut self, command: &str, answer: &str) -> Option<String> {
        self.command(command)?;
        self.expect(answer)
    }

    /// Waits for the process to end.
    pub fn wait(&mut self) {
        let _ = self.child.wait();
    }

    /// `members` as it sees them.
    pub fn members(&mut self) -> Vec<String> {
        let l = self.ask("members", "members ").expect("members answer");
        l.split_whitespace().nth(1).unwrap_or("").split(',').map(String::from).collect()
    }

    /// A `key=value` of its `stats` line.
    pub fn stat(&mut self, key: &str) -> String {
        let l = self.ask("stats", "stats ").expect("stats answer");
        l.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(String::from))
            .unwrap_or_default()
    }

    pub fn freeze(&self) {
        stop(&self.child);
    }

    pub fn thaw(&self) {
        signal(&self.child, libc::SIGCONT);
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Leaves gracefully and waits for the process to end.
    pub fn leave(&mut self) -> bool {
        let ok = self.ask("leave", "left").is_some();
        let _ = self.child.wait();
        ok
    }
}

impl Drop for MemberProcess {
    fn drop(&mut self) {
        signal(&self.child, libc::SIGCONT);
        self.kill();
    }
}
