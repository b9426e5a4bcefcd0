//! The roles of the distributed deployment built so far: `doraflow ingest` (the webhook
//! receiver, answering 202 only once the broker has the delivery with acks=all) and
//! `doraflow migrate` (creates the Kafka topic and the ClickHouse tables). The aggregator and API
//! roles on ClickHouse are not built yet.

use std::sync::Arc;

use anyhow::Context;
use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use doraflow_aggregator::clickhouse::ClickHouseSettings;
use doraflow_eventlog::EventLog;
use doraflow_eventlog::kafka::{KafkaLog, KafkaSettings, create_topics};
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
        },
        kafka.replication,
    ))
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
        println!(
            "kafka: topic {} {}",
            settings.deliveries_topic(),
            if created { "created" } else { "already exists" }
        );
    }
    if let Some(ch) = &config.storage.clickhouse {
        let settings = ClickHouseSettings {
            url: ch.url.clone(),
            database: ch.database.clone(),
            user: ch.user.clone(),
            password: ch.password.clone(),
        };
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
    let runtime = runtime()?;
    let log: Arc<dyn EventLog> = Arc::new(
        KafkaLog::connect(&settings)
            .with_context(|| format!("cannot connect to Kafka at {}", settings.brokers))?,
    );
    let ingest = Arc::new(doraflow_ingest::Ingest::new(
        log.clone(),
        config.sources.clone(),
        config.server.max_body_bytes,
    ));
    let ready_log = log.clone();
    let app = doraflow_ingest::router(ingest).merge(
        Router::new()
            .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
            .route(
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
            ),
    );
    let listen = config.server.listen.clone();
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        tracing::info!(address = %listen, brokers = %settings.brokers, topic = %settings.deliveries_topic(), "doraflow ingest serving");
        axum::serve(listener, app)
            .with_graceful_shutdown(crate::serve::shutdown_signal())
            .await
            .context("the HTTP server failed")
    })
}
