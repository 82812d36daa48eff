//! A real Garage cluster on loopback for the remote tests: three `garage
//! server` processes (one data directory each), replication factor 3, the
//! layout applied, a bucket and a key made through Garage's own CLI. Every
//! node is killed when the cluster is dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TempDir;

/// One node.
pub struct Node {
    pub config: PathBuf,
    pub s3_port: u16,
    pub web_port: u16,
    pub id: String,
    child: Option<Child>,
}

impl Node {
    /// The node's process id (None once killed).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// A running cluster.
pub struct Garage {
    pub dir: TempDir,
    pub nodes: Vec<Node>,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
    garage: PathBuf,
}

/// A port for a Garage node to bind, below the kernel's ephemeral range.
/// A port the kernel handed out (`bind(0)`) is free only until some
/// outgoing connection takes it as its local port, which can happen before
/// Garage binds it; ports below the ephemeral range are never handed out
/// that way. Each process walks its own stretch of them (by pid), and takes
/// the next one it can bind.
fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let ephemeral_low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u32, ephemeral_low.max(10_512));
    let span = high - low;
    let start = (std::process::id() * 97) % span;
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = low + (start + offset) % span;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port as u16)) {
            drop(listener);
            return port as u16;
        }
    }
    panic!("no free port on loopback between {low} and {high}")
}

fn random_hex(bytes: usize) -> String {
    let mut out = String::new();
    let mut file = std::fs::File::open("/dev/urandom").expect("/dev/urandom");
    let mut buf = vec![0u8; bytes];
    std::io::Read::read_exact(&mut file, &mut buf).expect("random bytes");
    for b in buf {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Starts `garage -c CONFIG server`, its output appended to `log` beside the config.
fn spawn_server(garage: &Path, config: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(config.with_file_name("log"))
        .unwrap();
    Command::new(garage)
        .arg("-c")
        .arg(config)
        .arg("server")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("garage server starts")
}

impl Garage {
    /// Starts a 3-node cluster with bucket `bucket` (and a bucket `localhost`
    /// served by the web endpoint, for http remotes). None (after a message)
    /// when `garage` is not installed, outside CI; under `CI=true` a missing
    /// `garage` fails the test.
    pub fn start(name: &str, bucket: &str) -> Option<Garage> {
        let garage = crate::require_tool("garage")?;
        let dir = TempDir::new(&format!("garage-{name}"));
        let secret = random_hex(32);
        let mut nodes = Vec::new();
        for i in 0..3 {
            let node_dir = dir.join(format!("n{i}"));
            std::fs::create_dir_all(&node_dir).unwrap();
            let (rpc, s3_port, web_port, admin) =
                (free_port(), free_port(), free_port(), free_port());
            let config = node_dir.join("garage.toml");
            std::fs::write(
                &config,
                format!(
                    "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\ndb_engine = \"sqlite\"\n\
                     replication_factor = 3\nrpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
                     rpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
                     [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3_port}\"\n\
                     root_domain = \".s3.garage.localhost\"\n\
                     [s3_web]\nbind_addr = \"127.0.0.1:{web_port}\"\n\
                     root_domain = \".web.garage.localhost\"\nindex = \"index.html\"\n\
                     [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                    meta = node_dir.join("meta").display(),
                    data = node_dir.join("data").display(),
                ),
            )
            .unwrap();
            let child = spawn_server(&garage, &config);
            nodes.push(Node {
                config,
                s3_port,
                web_port,
                id: String::new(),
                child: Some(child),
            });
        }
        let mut cluster = Garage {
            dir,
            nodes,
            bucket: bucket.to_string(),
            key_id: String::new(),
            secret: String::new(),
            garage,
        };
        for i in 0..3 {
            let id = cluster.retry(i, &["node", "id", "-q"]);
            cluster.nodes[i].id = id.trim().to_string();
        }
        for i in 1..3 {
            let id = cluster.nodes[i].id.clone();
            cluster.retry(0, &["node", "connect", &id]);
        }
        for i in 0..3 {
            let id = cluster.nodes[i].id.split('@').next().unwrap().to_string();
            cluster.retry(0, &["layout", "assign", "-z", "dc1", "-c", "1G", &id[..16]]);
        }
        cluster.retry(0, &["layout", "apply", "--version", "1"]);
        cluster.retry(0, &["bucket", "create", bucket]);
        cluster.retry(0, &["bucket", "create", "localhost"]);
        cluster.retry(0, &["key", "create", "pxos-test"]);
        for b in [bucket, "localhost"] {
            cluster.retry(
                0,
                &[
                    "bucket",
                    "allow",
                    "--read",
                    "--write",
                    "--owner",
                    b,
                    "--key",
                    "pxos-test",
                ],
            );
        }
        cluster.retry(0, &["bucket", "website", "--allow", "localhost"]);
        let info = cluster.retry(0, &["key", "info", "pxos-test", "--show-secret"]);
        for line in info.lines() {
            if let Some(v) = line.strip_prefix("Key ID:") {
                cluster.key_id = v.trim().to_string();
            }
            if let Some(v) = line.strip_prefix("Secret key:") {
                cluster.secret = v.trim().to_string();
            }
        }
        assert!(
            cluster.key_id.starts_with("GK") && cluster.secret.len() == 64,
            "garage key info: {info}"
        );
        Some(cluster)
    }

    /// Runs `garage -c NODE ARGS` until it succeeds (a cluster takes a moment
    /// to form); returns stdout.
    pub fn retry(&self, node: usize, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let output = Command::new(&self.garage)
                .arg("-c")
                .arg(&self.nodes[node].config)
                .args(args)
                .env("RUST_LOG", "warn")
                .output()
                .expect("garage runs");
            if output.status.success() {
                return String::from_utf8_lossy(&output.stdout).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "garage {args:?} keeps failing: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The S3 endpoint of node `i`.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[i].s3_port)
    }

    /// The web endpoint of node `i` for the `localhost` bucket.
    pub fn web(&self, i: usize) -> String {
        format!("http://localhost:{}", self.nodes[i].web_port)
    }

    /// Kills node `i` by its pid (SIGKILL) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = Command::new("kill")
                .args(["-9", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Restarts node `i` (after [`Garage::kill`]).
    pub fn restart(&mut self, i: usize) {
        let child = spawn_server(&self.garage, &self.nodes[i].config);
        self.nodes[i].child = Some(child);
        self.retry(i, &["node", "id", "-q"]);
    }

    /// The environment a `pxos` needs to reach this cluster with its key.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", self.key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret.clone()),
        ]
    }

    /// The directory node `i` keeps its data in.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.nodes[i].config.parent().unwrap().join("data")
    }

    /// Where the nodes' logs are.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
