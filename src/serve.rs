//! `doraflow serve`: the webhook receiver, the aggregator and the API in one process on one port,
//! over the embedded event log and store in the data directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use doraflow_aggregator::Catalog;
use doraflow_aggregator::consumer::Consumer;
use doraflow_eventlog::{EmbeddedLog, EventLog};

/// Runs until SIGINT or SIGTERM.
pub fn run(
    config_path: Option<&std::path::Path>,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut config = crate::config_file::load(config_path)?;
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    if let Some(dir) = data_dir {
        config.storage.data_dir = dir.display().to_string();
    }
    config.validate()?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let catalog = Catalog::new(&crate::catalog_files::services(&config)?)?;
    let definitions = config.definitions.compile()?;
    let data_dir = PathBuf::from(&config.storage.data_dir);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;

    let (log, opened) = EmbeddedLog::open(data_dir.join("log"));
    match opened {
        Ok(recovery) => tracing::info!(
            records = recovery.records,
            bytes = recovery.kept_bytes,
            cut_bytes = recovery.cut_bytes,
            "event log opened"
        ),
        Err(e) => {
            tracing::error!(error = %e, "event log unavailable: deliveries get 503 until it can be written")
        }
    }
    let log: Arc<dyn EventLog> = Arc::new(log);

    let _guard = runtime.enter();
    let (consumer, store) = Consumer::restore(
        &data_dir.join("aggregator"),
        log.clone(),
        catalog.clone(),
        definitions,
        Duration::from_secs(config.storage.checkpoint_interval_secs.max(1)),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let aggregator = spawn_aggregator(consumer, runtime.handle().clone(), stop_rx)?;

    let ingest = Arc::new(doraflow_ingest::Ingest::new(
        log.clone(),
        config.sources.clone(),
        config.server.max_body_bytes,
    ));
    let log_for_ready = log.clone();
    let end = log.durable_end();
    let api = doraflow_api::ApiState {
        store,
        catalog: Arc::new(catalog),
        tokens: Arc::new(config.api.tokens.clone()),
        log_available: Arc::new(move || log_for_ready.is_available()),
        log_end: Arc::new(move || *end.borrow()),
    };
    let app = doraflow_http::app::assemble(
        vec![
            doraflow_ingest::router(ingest),
            crate::roles::api_routes(api, &config.api.cors_origins),
        ],
        axum::Router::new(),
    );

    let listen = config.server.listen.clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(address = %listen, data_dir = %data_dir.display(), "doraflow serving");
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("the HTTP server failed")
    })?;
    tracing::info!("shutting down: writing the aggregator checkpoint");
    let _ = stop_tx.send(true);
    let _ = aggregator.join();
    Ok(())
}

/// Runs the consumer on a thread of its own until `stop` turns true. A bug in the engine must
/// not leave the API serving stale numbers as if fresh: a panic stops the process, so that its
/// supervisor restarts it (every accepted delivery is in the log; the restart replays from the
/// checkpoint).
pub(crate) fn spawn_aggregator(
    consumer: Consumer,
    runtime: tokio::runtime::Handle,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    doraflow_aggregator::consumer::spawn("doraflow-aggregator".into(), || consumer, runtime, stop)
        .context("cannot start the aggregator thread")
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
