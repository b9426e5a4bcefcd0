//! The `doraflow` command line: parses arguments and hands over to one command module.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc: the ingest path allocates many short-lived buffers of a few kilobytes, where glibc's
/// allocator measured as a fifth of the request cost (docs/benchmarks.md). Built without its
/// transparent huge pages (`no_thp`): it asked the kernel for huge pages on its arenas, and every
/// page it returned and took again was zeroed whole, 2 MiB at a time; that was a quarter of an
/// aggregator's replay (docs/benchmarks.md, "The aggregator alone").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod catalog_files;
mod check_config;
mod config_file;
mod logging;
mod replay;
mod roles;
mod serve;

/// DORA metrics from webhooks: exact definitions, fresh within a second, one binary.
#[derive(Parser)]
#[command(name = "doraflow", version, about)]
struct Cli {
    /// Configuration file (TOML). Every key can also be set as DORAFLOW_<SECTION>__<KEY>.
    #[arg(long, global = true, env = "DORAFLOW_CONFIG")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How logs are written.
#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run receiver, aggregator and API in one process on the embedded log and store.
    Serve {
        /// Address to listen on (overrides server.listen).
        #[arg(long)]
        listen: Option<String>,
        /// Data directory (overrides storage.data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Send recorded deliveries (JSON lines: endpoint, headers, body) to a running doraflow.
    Replay {
        /// Files of recorded deliveries.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Base URL of the doraflow to send to (default: http://<server.listen>).
        #[arg(long)]
        url: Option<String>,
        /// Deliveries in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// The webhook receiver alone, writing to Kafka (storage.kafka): answers 202 once the
    /// broker has the delivery (acks=all).
    Ingest {
        /// Address to listen on (overrides server.listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// The aggregator alone: a member of the aggregators' consumer group, the engine over each
    /// partition it holds, writing the facts to ClickHouse.
    Aggregate {
        /// Directory of the aggregator's checkpoints (overrides storage.data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Serve /healthz and /metrics on this address (none by default).
        #[arg(long)]
        listen: Option<String>,
    },
    /// The metrics API alone, over the facts in ClickHouse.
    Api {
        /// Address to listen on (overrides server.listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Create the Kafka topics and the ClickHouse tables (idempotent).
    Migrate,
    /// Validate a configuration and say exactly what is wrong.
    CheckConfig,
    /// The service catalog ([[services]] and Backstage files).
    Catalog {
        #[command(subcommand)]
        action: CatalogAction,
    },
}

#[derive(Subcommand)]
enum CatalogAction {
    /// Read every catalog source, check names and aliases, and list the services.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match cli.command {
        Command::Serve { listen, data_dir } => serve::run(cli.config.as_deref(), listen, data_dir),
        Command::Replay {
            files,
            url,
            concurrency,
        } => replay::run(cli.config.as_deref(), &files, url, concurrency),
        Command::Ingest { listen } => roles::ingest(cli.config.as_deref(), listen),
        Command::Aggregate { data_dir, listen } => {
            roles::aggregate(cli.config.as_deref(), data_dir, listen)
        }
        Command::Api { listen } => roles::api(cli.config.as_deref(), listen),
        Command::Migrate => roles::migrate(cli.config.as_deref()),
        Command::CheckConfig => check_config::run(cli.config.as_deref()),
        Command::Catalog {
            action: CatalogAction::Check,
        } => catalog_files::check(cli.config.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
