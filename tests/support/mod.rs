//! Helpers of the end-to-end tests: start the real `doraflow` binary on a free port with a config
//! and a data directory, send deliveries to it, read the API, compare JSON with float tolerance.

#![allow(dead_code)]

pub mod dashboards;
pub mod scenario;

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `doraflow serve`.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub listen: String,
    pub dir: PathBuf,
    config: PathBuf,
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Writes `config` into `dir` and starts `doraflow serve` with data in `dir/data`.
    pub fn start(dir: &Path, config_for: impl Fn(&str) -> String) -> Server {
        let listen = format!("127.0.0.1:{}", free_port());
        let config = dir.join("doraflow.toml");
        std::fs::write(&config, config_for(&listen)).unwrap();
        let mut server = Server {
            child: None,
            base: format!("http://{listen}"),
            listen,
            dir: dir.to_path_buf(),
            config,
        };
        server.spawn();
        server
    }

    /// Starts the process again on the same config and data.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("serve.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_doraflow"))
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start doraflow");
        self.child = Some(child);
        self.wait_healthy();
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = reqwest::blocking::Client::new();
        while Instant::now() < deadline {
            if let Ok(r) = client.get(format!("{}/healthz", self.base)).send()
                && r.status().is_success()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("doraflow did not become healthy; log:\n{}", self.log());
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("serve.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Waits until the aggregator has applied everything durable in the log (`/readyz` lag 0).
    pub fn wait_caught_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, ready) = self.get("/readyz", None);
            if ready["lag_bytes"] == 0 && ready["aggregator"] == "caught_up" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the aggregator did not catch up: {ready}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush or checkpoint.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait: a graceful stop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }

    /// GET a path with an optional bearer token; returns status and JSON.
    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let client = reqwest::blocking::Client::new();
        let mut request = client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Sends deliveries with `threads` senders; returns each delivery's status (0: no answer).
pub fn send_all(base: &str, deliveries: &[scenario::Delivery], threads: usize) -> Vec<u16> {
    send_all_counting(
        base,
        deliveries,
        threads,
        &std::sync::atomic::AtomicUsize::new(0),
    )
}

/// Like [`send_all`], counting 202 answers in `accepted` as they come.
pub fn send_all_counting(
    base: &str,
    deliveries: &[scenario::Delivery],
    threads: usize,
    accepted: &std::sync::atomic::AtomicUsize,
) -> Vec<u16> {
    let statuses = std::sync::Mutex::new(vec![0u16; deliveries.len()]);
    for_each_delivery(deliveries, threads, |client, i, d| {
        let status = send_one(client, base, d);
        if status == 202 {
            accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        statuses.lock().unwrap()[i] = status;
    });
    statuses.into_inner().unwrap()
}

/// Hands every delivery (with its index) to `send` once, from `threads` senders, each with its
/// own HTTP client.
pub fn for_each_delivery(
    deliveries: &[scenario::Delivery],
    threads: usize,
    send: impl Fn(&reqwest::blocking::Client, usize, &scenario::Delivery) + Sync,
) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(d) = deliveries.get(i) else { break };
                    send(&client, i, d);
                }
            });
        }
    });
}

/// Sends one delivery; 0 when no answer came.
pub fn send_one(client: &reqwest::blocking::Client, base: &str, d: &scenario::Delivery) -> u16 {
    let mut request = client
        .post(format!("{base}{}", d.endpoint))
        .body(d.body.clone());
    for (k, v) in &d.headers {
        request = request.header(k, v);
    }
    request.send().map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Asserts that every field of `expected` is in `actual` with the same value (floats within a
/// relative 1e-9). Returns the mismatches instead of panicking, for one readable report.
pub fn mismatches(path: &str, actual: &Value, expected: &Value, out: &mut Vec<String>) {
    match (actual, expected) {
        (_, Value::Object(fields)) => {
            for (key, want) in fields {
                let got = actual.get(key).unwrap_or(&Value::Null);
                mismatches(&format!("{path}.{key}"), got, want, out);
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            if (a - b).abs() > 1e-9 * b.abs().max(1.0) {
                out.push(format!("{path}: got {a}, expected {b}"));
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: got {a}, expected {b}")),
    }
}

/// Reshapes the model's recovery entry like the API's (stats flattened beside `unrecovered`).
pub fn api_shape(mut expected: Value) -> Value {
    let recovery = expected["failed_deployment_recovery_time"].take();
    let mut flat = recovery["stats"].clone();
    flat["unrecovered"] = recovery["unrecovered"].clone();
    expected["failed_deployment_recovery_time"] = flat;
    expected
}

/// Checks a Prometheus exposition with `promtool check metrics` (Debian's `prometheus` package;
/// scripts/test installs it): its complaints fail the test.
pub fn promtool_check(exposition: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool on PATH (scripts/test installs Debian's prometheus package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}\n{exposition}"
    );
}
