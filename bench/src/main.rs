//! `doraflow-bench`: the load harness behind docs/benchmarks.md. It writes signed request files for
//! `wrk`, runs a bare axum server (the baseline: 202 to the same requests, nothing else), measures
//! freshness (202 to visible in `/api/v1/dora`) and sends a year of activity for many services.
//! `scripts/bench` orchestrates it; every figure it prints is a measurement of this run.

mod activity;
mod engine;
mod produce;

/// The same allocator as the `doraflow` binary, so engine figures match the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use serde_json::json;

#[derive(Parser)]
#[command(name = "doraflow-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write `count` distinct signed GitHub push bodies (`signature<TAB>body` lines) for wrk.
    Requests {
        #[arg(long)]
        secret: String,
        #[arg(long, default_value_t = 2000)]
        count: usize,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// A bare axum server answering 202 to every POST after reading the body: the baseline.
    Bare {
        #[arg(long, default_value = "127.0.0.1:18081")]
        listen: String,
    },
    /// Send `count` production deployments one at a time and time 202 → visible in the API.
    Freshness {
        #[arg(long)]
        url: String,
        /// Where the API answers, when not at `url` (the distributed `doraflow api`).
        #[arg(long)]
        api_url: Option<String>,
        #[arg(long)]
        secret: String,
        #[arg(long, default_value_t = 300)]
        count: usize,
    },
    /// Send a year of activity for `services` services (pushes, deployments, incidents).
    Year {
        #[arg(long)]
        url: String,
        #[arg(long)]
        github_secret: String,
        #[arg(long)]
        pagerduty_secret: String,
        #[arg(long, default_value_t = 100)]
        services: usize,
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// Deployments per day and service (1: one on six days of seven).
        #[arg(long, default_value_t = 1)]
        deploys_per_day: usize,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Day by day across the services (as live webhooks arrive) instead of one service's
        /// year after another.
        #[arg(long)]
        interleaved: bool,
    },
    /// The metric engine alone on one core: a year of activity, decode only vs decode + apply
    /// + derive, in normalized events per second.
    Engine {
        #[arg(long, default_value_t = 1000)]
        services: usize,
        #[arg(long, default_value_t = 365)]
        days: i64,
        #[arg(long, default_value_t = 1)]
        deploys_per_day: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// The engine's horizon (`definitions.horizon`); `10000d` to keep everything.
        #[arg(long, default_value = "90d")]
        horizon: String,
        /// Decode the whole year before the engine reads it (the measurement before session
        /// 18), instead of decoding 64 records at a time just before applying them as the
        /// aggregator does.
        #[arg(long)]
        decode_first: bool,
        /// Apply the records of odd rounds one at a time (`Engine::apply_owned`, as before session
        /// 29) and of even rounds a read batch at a time (`Engine::apply_batch`, as the
        /// aggregator does): the two compared in rounds next to each other, in one process.
        #[arg(long)]
        odd_rounds_one_at_a_time: bool,
    },
    /// Fill the Kafka topics with a year of activity for `services` services (for timing
    /// `doraflow aggregate` alone).
    Produce {
        #[command(flatten)]
        topics: produce::Topics,
        #[arg(long, default_value_t = 1000)]
        services: usize,
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// Appends in flight at once.
        #[arg(long, default_value_t = 2000)]
        in_flight: usize,
    },
    /// Read one events-topic partition whole, without aggregating (the aggregator's baseline).
    Read {
        #[command(flatten)]
        topics: produce::Topics,
        #[arg(long, default_value_t = 0)]
        partition: u32,
    },
    /// GET a URL `count` times, one at a time, and print the latency median, p99 and max.
    Latency {
        /// The full URL, query included.
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 100)]
        count: usize,
        /// Bearer token, when the API has tokens.
        #[arg(long)]
        token: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Requests { secret, count, out } => requests(&secret, count, &out),
        Command::Bare { listen } => bare(&listen),
        Command::Freshness {
            url,
            api_url,
            secret,
            count,
        } => freshness(&url, api_url.as_deref().unwrap_or(&url), &secret, count),
        Command::Year {
            url,
            github_secret,
            pagerduty_secret,
            services,
            days,
            deploys_per_day,
            concurrency,
            interleaved,
        } => activity::year(
            &url,
            &github_secret,
            &pagerduty_secret,
            services,
            days,
            deploys_per_day,
            concurrency,
            interleaved,
        ),
        Command::Engine {
            services,
            days,
            deploys_per_day,
            rounds,
            horizon,
            decode_first,
            odd_rounds_one_at_a_time,
        } => engine::run(
            activity::year_requests("gh", "pd", services, days, deploys_per_day),
            rounds,
            &horizon,
            decode_first,
            odd_rounds_one_at_a_time,
        ),
        Command::Produce {
            topics,
            services,
            days,
            in_flight,
        } => produce::run(
            &topics.settings(),
            activity::year_requests("gh", "pd", services, days, 1),
            in_flight,
        ),
        Command::Read { topics, partition } => produce::read(&topics.settings(), partition),
        Command::Latency { url, count, token } => latency(&url, count, token.as_deref()),
    }
}

/// Prints the median, p99 and max of a histogram of microseconds, in milliseconds.
fn print_latency(label: &str, histogram: &Histogram<u64>) {
    println!(
        "{label}: median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
        histogram.max() as f64 / 1000.0
    );
}

fn latency(url: &str, count: usize, token: Option<&str>) -> anyhow::Result<()> {
    let client = reqwest::blocking::Client::new();
    let mut histogram = Histogram::<u64>::new(3)?;
    for i in 0..count {
        let mut request = client.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let started = Instant::now();
        let response = request.send()?;
        let status = response.status();
        let body = response.bytes()?;
        let elapsed = started.elapsed();
        if !status.is_success() {
            bail!(
                "request {i} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        histogram.record(elapsed.as_micros() as u64)?;
    }
    print_latency(&format!("{count} GETs"), &histogram);
    Ok(())
}

fn requests(secret: &str, count: usize, out: &std::path::Path) -> anyhow::Result<()> {
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(out).context("create the request file")?);
    let mut before = "0".repeat(40);
    for i in 0..count {
        let commits: Vec<_> = (0..3)
            .map(|c| activity::commit(&format!("load-{i}-{c}"), chrono::Utc::now(), "feat: load"))
            .collect();
        let after = commits[2]["id"].as_str().unwrap().to_string();
        let body = activity::push_body("load/service", &before, &after, &commits);
        before = after;
        writeln!(file, "{}\t{}", activity::sign(secret, &body), body)?;
    }
    file.flush()?;
    Ok(())
}

fn bare(listen: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let app = axum::Router::new().route(
            "/webhooks/github",
            axum::routing::post(|body: axum::body::Bytes| async move {
                (
                    axum::http::StatusCode::ACCEPTED,
                    axum::Json(json!({"status": "accepted", "bytes": body.len()})),
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind(listen).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}

fn freshness(url: &str, api_url: &str, secret: &str, count: usize) -> anyhow::Result<()> {
    let client = reqwest::blocking::Client::new();
    let service = format!("fresh/{}", std::process::id());
    let mut histogram = Histogram::<u64>::new(3)?;
    let start = chrono::Utc::now() - chrono::Duration::days(1);
    let window = format!(
        "service={service}&from={}&to={}",
        (start - chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ"),
        (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%SZ")
    );
    for i in 0..count {
        let at = start + chrono::Duration::seconds(i as i64);
        let body = activity::deployment_status_body(
            &service,
            20_000_000_000 + i as u64, // beyond the ids `year` gives its deployments
            &format!("{:040x}", i + 1),
            "production",
            at,
            "success",
        );
        let response = client
            .post(format!("{url}/webhooks/github"))
            .header("content-type", "application/json")
            .header("x-github-event", "deployment_status")
            .header(
                "x-github-delivery",
                format!("fresh-{}-{i}", std::process::id()),
            )
            .header(
                "x-hub-signature-256",
                format!("sha256={}", activity::sign(secret, &body)),
            )
            .body(body)
            .send()?;
        let accepted = Instant::now();
        if response.status().as_u16() != 202 {
            bail!("delivery {i} answered {}", response.status());
        }
        loop {
            let answer: serde_json::Value = client
                .get(format!("{api_url}/api/v1/dora?{window}"))
                .send()?
                .json()?;
            if answer["deployment_frequency"]["deployments"].as_u64() == Some(i as u64 + 1) {
                break;
            }
            if accepted.elapsed() > Duration::from_secs(10) {
                bail!("delivery {i} not visible after 10 s: {answer}");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        histogram.record(accepted.elapsed().as_micros() as u64)?;
    }
    print_latency(&format!("freshness over {count} deliveries"), &histogram);
    Ok(())
}
