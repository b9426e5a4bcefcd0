//! The roles of the distributed deployment: `doraflow ingest` (the webhook receiver, answering
//! 202 only once the broker has the delivery with acks=all), `doraflow aggregate` (the engine over
//! the Kafka log, writing every publish to ClickHouse before it checkpoints), `doraflow api` (the
//! metrics API over a replica of the facts read from ClickHouse) and `doraflow migrate` (creates
//! the Kafka topic and the ClickHouse tables).

use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use doraflow_aggregator::clickhouse::ClickHouseSettings;
use doraflow_eventlog::EventLog;
use doraflow_eventlog::kafka::{KafkaLog, KafkaSettings, Topic, create_topics};
use doraflow_schemas::Config;
use serde_json::json;

fn kafka_settings(config: &Config) -> anyhow::Result<(KafkaSettings, i32)> {
    let kafka = config.storage.kafka.as_ref().context(
        "storage.kafka is not configured: set storage.kafka = { brokers = \"host:9092\" } \
         (or DORAFLOW_STORAGE__KAFKA__BROKERS)",
    )?;
    Ok((
        KafkaSettings {
            brokers: kafka.brokers.clone(),
            topic_prefix: kafka.topic_prefix.clone(),
            partitions: kafka.partitions,
        },
        kafka.replication,
    ))
}

fn clickhouse_settings(config: &Config) -> anyhow::Result<ClickHouseSettings> {
    let ch = config.storage.clickhouse.as_ref().context(
        "storage.clickhouse is not configured: set storage.clickhouse = { url = \"http://host:8123\" } \
         (or DORAFLOW_STORAGE__CLICKHOUSE__URL)",
    )?;
    Ok(ClickHouseSettings {
        url: ch.url.clone(),
        database: ch.database.clone(),
        user: ch.user.clone(),
        password: ch.password.clone(),
    })
}

/// Reports librdkafka's statistics into the process's metrics.
fn report_kafka_statistics() {
    let kafka = doraflow_telemetry::global().kafka.clone();
    doraflow_eventlog::kafka::statistics::report_to(Arc::new(move |client, statistics| {
        kafka.observe(client, statistics)
    }));
}

/// The metrics API's routes and document, with CORS for the configured origins.
pub(crate) fn api_routes(
    api: doraflow_api::ApiState,
    cors_origins: &[String],
) -> (Router, utoipa::openapi::OpenApi) {
    let (mut routes, document) = doraflow_api::router(api);
    if let Some(cors) = doraflow_http::middleware::cors(cors_origins) {
        routes = routes.layer(cors);
    }
    (routes, document)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `doraflow migrate`: creates the Kafka topic and the ClickHouse tables (idempotent), for
/// whichever of the two is configured.
pub fn migrate(config_path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let config = crate::config_file::load(config_path)?;
    if config.storage.kafka.is_none() && config.storage.clickhouse.is_none() {
        anyhow::bail!(
            "neither storage.kafka nor storage.clickhouse is configured: nothing to migrate \
             (doraflow serve needs no migration)"
        );
    }
    let runtime = runtime()?;
    if config.storage.kafka.is_some() {
        let (settings, replication) = kafka_settings(&config)?;
        let created = runtime
            .block_on(create_topics(&settings, replication))
            .with_context(|| format!("cannot create the topics on {}", settings.brokers))?;
        for (topic, created) in created {
            println!(
                "kafka: topic {topic} {}",
                if created {
                    format!("created ({} partitions)", settings.partitions)
                } else {
                    "already exists".to_string()
                }
            );
        }
    }
    if config.storage.clickhouse.is_some() {
        let settings = clickhouse_settings(&config)?;
        let applied = runtime
            .block_on(doraflow_aggregator::clickhouse::migrate(&settings))
            .with_context(|| format!("cannot migrate ClickHouse at {}", settings.url))?;
        if applied.is_empty() {
            println!("clickhouse: database {} is up to date", settings.database);
        } else {
            println!(
                "clickhouse: database {}: applied {}",
                settings.database,
                applied.join(", ")
            );
        }
    }
    Ok(())
}

/// `doraflow ingest`: the webhook receiver on Kafka, with `/healthz` and `/readyz`.
pub fn ingest(config_path: Option<&std::path::Path>, listen: Option<String>) -> anyhow::Result<()> {
    let mut config = crate::config_file::load(config_path)?;
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    config.validate()?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let (settings, _) = kafka_settings(&config)?;
    // Events go to the partition of each service they concern: the catalog decides.
    let catalog = Arc::new(doraflow_aggregator::Catalog::new(
        &crate::catalog_files::services(&config)?,
    )?);
    let router = doraflow_aggregator::partitioning::router(catalog, settings.partitions);
    report_kafka_statistics();
    let runtime = runtime()?;
    let _guard = runtime.enter();
    let log: Arc<dyn EventLog> = Arc::new(
        KafkaLog::connect(&settings, router, Topic::Raw, 0)
            .with_context(|| format!("cannot connect to Kafka at {}", settings.brokers))?,
    );
    let ingest = Arc::new(doraflow_ingest::Ingest::new(
        log.clone(),
        config.sources.clone(),
        config.server.max_body_bytes,
    ));
    let ready_log = log.clone();
    let ready = Router::new().route(
        "/readyz",
        get(move || {
            let available = ready_log.is_available();
            async move {
                let status = if available {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                (
                    status,
                    Json(json!({
                        "status": if available { "ready" } else { "not_ready" },
                        "event_log": if available { "available" } else { "unavailable" },
                    })),
                )
                    .into_response()
            }
        }),
    );
    let app = doraflow_http::app::assemble(vec![doraflow_ingest::router(ingest)], ready);
    let listen = config.server.listen.clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(address = %listen, brokers = %settings.brokers, prefix = %settings.topic_prefix, partitions = settings.partitions, "doraflow ingest serving");
        axum::serve(listener, app)
            .with_graceful_shutdown(crate::serve::shutdown_signal())
            .await
            .context("the HTTP server failed")
    })
}

/// `doraflow aggregate`: a member of the aggregators' consumer group; for each partition of the
/// events topic it is assigned, the engine over that partition, every publish written to
/// ClickHouse (retried until it is) before the group's offset moves past it. Checkpoints live in
/// `<data_dir>/aggregator/partition-<n>`.
pub fn aggregate(
    config_path: Option<&std::path::Path>,
    data_dir: Option<std::path::PathBuf>,
    listen: Option<String>,
) -> anyhow::Result<()> {
    let mut config = crate::config_file::load(config_path)?;
    if let Some(dir) = data_dir {
        config.storage.data_dir = dir.display().to_string();
    }
    config.validate()?;
    let (kafka, _) = kafka_settings(&config)?;
    let clickhouse = clickhouse_settings(&config)?;
    let catalog = doraflow_aggregator::Catalog::new(&crate::catalog_files::services(&config)?)?;
    let definitions = config.definitions.compile()?;
    let group = config
        .storage
        .kafka
        .as_ref()
        .and_then(|k| k.consumer_group.clone())
        .unwrap_or_else(|| doraflow_schemas::topics::default_group(&kafka.topic_prefix));
    let settings = doraflow_aggregator::group::GroupSettings {
        kafka: kafka.clone(),
        group: group.clone(),
        clickhouse: clickhouse.clone(),
        checkpoint_dir: std::path::PathBuf::from(&config.storage.data_dir).join("aggregator"),
        checkpoint_every: std::time::Duration::from_secs(
            config.storage.checkpoint_interval_secs.max(1),
        ),
    };
    report_kafka_statistics();
    let runtime = runtime()?;
    if let Some(listen) = listen {
        // Health and metrics only: the aggregator answers no other request.
        let app = doraflow_http::app::assemble(Vec::new(), Router::new());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(&listen))
            .with_context(|| format!("cannot listen on {listen}"))?;
        runtime.spawn(async move { axum::serve(listener, app).await });
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handle = runtime.handle().clone();
    let member = std::thread::Builder::new()
        .name("aggregate-group".into())
        .spawn(move || {
            doraflow_aggregator::group::run(settings, catalog, definitions, handle, stop_rx)
        })
        .context("cannot start the group thread")?;
    tracing::info!(brokers = %kafka.brokers, %group, clickhouse = %clickhouse.url, "doraflow aggregate running");
    runtime.block_on(crate::serve::shutdown_signal());
    tracing::info!("shutting down: writing the partitions' checkpoints");
    let _ = stop_tx.send(true);
    match member.join() {
        Ok(result) => result.context("the consumer group failed")?,
        Err(_) => anyhow::bail!("the consumer group thread panicked"),
    }
    Ok(())
}

/// How often the API reads what the aggregator wrote.
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// `doraflow api`: the metrics API over a replica of the facts, refreshed from ClickHouse.
pub fn api(config_path: Option<&std::path::Path>, listen: Option<String>) -> anyhow::Result<()> {
    let mut config = crate::config_file::load(config_path)?;
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    config.validate()?;
    let clickhouse = clickhouse_settings(&config)?;
    let catalog = doraflow_aggregator::Catalog::new(&crate::catalog_files::services(&config)?)?;
    let runtime = runtime()?;
    let store = Arc::new(std::sync::RwLock::new(
        doraflow_aggregator::store::FactStore::default(),
    ));
    let reachable = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (store, reachable, settings) = (store.clone(), reachable.clone(), clickhouse.clone());
        runtime.spawn(async move {
            let mut reader = None;
            loop {
                if reader.is_none() {
                    reader = doraflow_aggregator::clickhouse::facts::FactReader::connect(&settings)
                        .await
                        .map_err(|e| tracing::warn!(error = %e, "ClickHouse unreachable"))
                        .ok();
                }
                if let Some(r) = reader.as_mut() {
                    match r.refresh(&store).await {
                        Ok(_) => {
                            let first = !reachable.swap(true, std::sync::atomic::Ordering::Relaxed);
                            if first && !store.read().expect("store lock").caught_up() {
                                store.write().expect("store lock").set_caught_up();
                                store.read().expect("store lock").warm_up();
                            }
                        }
                        Err(e) => {
                            if reachable.swap(false, std::sync::atomic::Ordering::Relaxed) {
                                tracing::warn!(error = %e, "reading ClickHouse failed");
                            }
                        }
                    }
                } else {
                    reachable.store(false, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(REFRESH_EVERY).await;
            }
        });
    }
    let offset_store = store.clone();
    let api = doraflow_api::ApiState {
        store,
        catalog: Arc::new(catalog),
        tokens: Arc::new(config.api.tokens.clone()),
        log_available: Arc::new(move || reachable.load(std::sync::atomic::Ordering::Relaxed)),
        log_end: Arc::new(move || offset_store.read().expect("store lock").applied_offset()),
    };
    report_kafka_statistics();
    let app = doraflow_http::app::assemble(
        vec![api_routes(api, &config.api.cors_origins)],
        Router::new(),
    );
    let listen = config.server.listen.clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(address = %listen, clickhouse = %clickhouse.url, "doraflow api serving");
        axum::serve(listener, app)
            .with_graceful_shutdown(crate::serve::shutdown_signal())
            .await
            .context("the HTTP server failed")
    })
}
