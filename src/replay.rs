//! `doraflow replay FILE...`: sends recorded deliveries to a running doraflow's webhook endpoints,
//! exactly as the sources would (same headers, same raw body), with a progress bar. Each line of a
//! file is `{"endpoint": "/webhooks/github", "headers": {...}, "body": "<raw body>"}`.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;

/// One recorded delivery.
#[derive(Deserialize)]
struct Recorded {
    endpoint: String,
    #[serde(default)]
    headers: serde_json::Map<String, serde_json::Value>,
    body: serde_json::Value,
}

#[derive(Default)]
struct Tally {
    accepted: AtomicU64,
    duplicate: AtomicU64,
    ignored: AtomicU64,
    other_ok: AtomicU64,
    failed: AtomicU64,
    first_failures: Mutex<Vec<String>>,
}

/// Replays every file, in order, `concurrency` deliveries at a time.
pub fn run(
    config_path: Option<&std::path::Path>,
    files: &[PathBuf],
    url: Option<String>,
    concurrency: usize,
) -> anyhow::Result<()> {
    let base = match url {
        Some(url) => url,
        None => format!(
            "http://{}",
            crate::config_file::load(config_path)?.server.listen
        ),
    };
    let base = base.trim_end_matches('/').to_string();
    let mut lines = Vec::new();
    for file in files {
        let reader = std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
        );
        for (n, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {}", file.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let recorded: Recorded = serde_json::from_str(&line).with_context(|| {
                format!("{}:{}: not a recorded delivery", file.display(), n + 1)
            })?;
            lines.push(recorded);
        }
    }
    let total = lines.len() as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} deliveries {per_sec} eta {eta}")
            .expect("valid template"),
    );
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let queue = Arc::new(Mutex::new(lines.into_iter()));
    let tally = Arc::new(Tally::default());
    std::thread::scope(|scope| {
        for _ in 0..concurrency.max(1) {
            let queue = queue.clone();
            let tally = tally.clone();
            let client = client.clone();
            let bar = bar.clone();
            let base = base.clone();
            scope.spawn(move || {
                loop {
                    let next = queue.lock().expect("queue lock").next();
                    let Some(recorded) = next else { break };
                    send(&client, &base, recorded, &tally);
                    bar.inc(1);
                }
            });
        }
    });
    bar.finish_and_clear();
    let count = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "replayed {total} deliveries to {base}: {} accepted, {} duplicate, {} ignored, {} other 2xx, {} failed",
        count(&tally.accepted),
        count(&tally.duplicate),
        count(&tally.ignored),
        count(&tally.other_ok),
        count(&tally.failed)
    );
    let failures = tally.first_failures.lock().expect("failures lock");
    for failure in failures.iter() {
        eprintln!("  {failure}");
    }
    if count(&tally.failed) > 0 {
        bail!("{} deliveries were not accepted", count(&tally.failed));
    }
    Ok(())
}

fn send(client: &reqwest::blocking::Client, base: &str, recorded: Recorded, tally: &Tally) {
    let body = match recorded.body {
        serde_json::Value::String(raw) => raw,
        other => other.to_string(),
    };
    let mut request = client
        .post(format!("{base}{}", recorded.endpoint))
        .body(body);
    for (name, value) in &recorded.headers {
        let value = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        request = request.header(name.as_str(), value);
    }
    let failure = match request.send() {
        Ok(response) if response.status().is_success() => {
            let status: serde_json::Value = response.json().unwrap_or_default();
            let counter = match status["status"].as_str() {
                Some("accepted") => &tally.accepted,
                Some("duplicate") => &tally.duplicate,
                Some("ignored") => &tally.ignored,
                _ => &tally.other_ok,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Ok(response) => format!(
            "{} {}: {}",
            recorded.endpoint,
            response.status(),
            response.text().unwrap_or_default()
        ),
        Err(e) => format!("{}: {e}", recorded.endpoint),
    };
    tally.failed.fetch_add(1, Ordering::Relaxed);
    let mut failures = tally.first_failures.lock().expect("failures lock");
    if failures.len() < 5 {
        failures.push(failure);
    }
}
