//! The TOML configuration (interfaces.md), its `DORAFLOW_<SECTION>__<KEY>` environment overrides
//! and its validation. Parsing takes text and a list of variables, so it stays free of I/O.

use std::collections::{BTreeMap, HashMap};

use regex::Regex;

use crate::pattern::Pattern;
use serde::{Deserialize, Serialize};

use crate::time::parse_duration_secs;

/// A configuration error that names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML could not be read or did not match the schema.
    #[error("{0}")]
    Syntax(String),
    /// A value was read but is not acceptable.
    #[error("`{key}`: {message}")]
    Invalid {
        /// Dotted path of the offending key, e.g. `definitions.attribution_window`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The HTTP server.
    pub server: ServerConfig,
    /// Where the event log and the store live.
    pub storage: StorageConfig,
    /// Webhook sources and their secrets.
    pub sources: SourcesConfig,
    /// The metrics API.
    pub api: ApiConfig,
    /// Tunable parts of the metric definitions (metrics.md).
    pub definitions: DefinitionsConfig,
    /// The service catalog.
    pub services: Vec<ServiceConfig>,
    /// Where else the catalog comes from.
    pub catalog: CatalogConfig,
}

/// `[catalog]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Globs of Backstage `catalog-info.yaml` files whose `Component`s become services
    /// (relative globs are relative to the working directory).
    pub backstage: Vec<String>,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: String,
    /// Largest accepted webhook body in bytes. Default 26214400 (GitHub's 25 MB cap).
    pub max_body_bytes: usize,
    /// Record the metrics of requests, deliveries, the event log, the aggregator and the store
    /// for `/metrics`. Default true; `false` leaves only the process and Kafka statistics, and
    /// exists to measure what recording costs (docs/benchmarks.md).
    pub instrumentation: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 26_214_400,
            instrumentation: true,
        }
    }
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Directory of the embedded event log and store. Default `./data`.
    pub data_dir: String,
    /// Kafka for the distributed deployment (not used by `serve`).
    pub kafka: Option<KafkaConfig>,
    /// ClickHouse for the distributed deployment (not used by `serve`).
    pub clickhouse: Option<ClickHouseConfig>,
    /// Seconds between aggregator checkpoints (taken only when new records were applied); a
    /// restart replays at most this much of the log. Default 30.
    pub checkpoint_interval_secs: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: "./data".into(),
            kafka: None,
            clickhouse: None,
            checkpoint_interval_secs: 30,
        }
    }
}

/// `storage.kafka`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port...]`.
    pub brokers: String,
    /// Prefix of the topic names. Default `doraflow`.
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    /// Replication factor of the topics `doraflow migrate` creates. Default 1.
    #[serde(default = "default_replication")]
    pub replication: i32,
    /// Partitions of the topics `doraflow migrate` creates: the most aggregators that can share
    /// the work. Fixed once the topics exist (see docs/operations.md). Default 6.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// Consumer group of the aggregators. Default `<topic_prefix>.aggregate`.
    #[serde(default)]
    pub consumer_group: Option<String>,
}

/// `storage.clickhouse`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// The HTTP interface, `http://host:8123`.
    pub url: String,
    /// Database of doraflow's tables (created by `doraflow migrate`). Default `doraflow`.
    #[serde(default = "default_database")]
    pub database: String,
    /// User, when not `default`.
    #[serde(default)]
    pub user: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<String>,
}

fn default_database() -> String {
    "doraflow".into()
}

fn default_topic_prefix() -> String {
    "doraflow".into()
}

fn default_replication() -> i32 {
    1
}

fn default_partitions() -> u32 {
    6
}

/// `[sources]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    /// GitHub: HMAC secrets for `X-Hub-Signature-256`.
    pub github: SecretsConfig,
    /// GitLab: tokens for `X-Gitlab-Token`.
    pub gitlab: TokensConfig,
    /// PagerDuty V3: HMAC secrets for `X-PagerDuty-Signature`.
    pub pagerduty: SecretsConfig,
    /// Argo CD: bearer tokens.
    pub argocd: TokensConfig,
    /// CDEvents: bearer tokens.
    pub cdevents: TokensConfig,
    /// Flux: HMAC secrets for `X-Signature` (`generic-hmac` provider).
    pub flux: SecretsConfig,
}

/// A source authenticated by HMAC secrets.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// Shared secrets; several while rotating, any match is accepted. Empty: every delivery is 401.
    pub secrets: Vec<String>,
}

/// A source authenticated by a token.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Accepted tokens. Empty: every delivery is 401.
    pub tokens: Vec<String>,
}

/// `[api]`
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Bearer tokens. None: the API is open.
    pub tokens: Vec<ApiToken>,
    /// Origins that browsers may call the API from (CORS), such as
    /// `https://grafana.example.com`, or `["*"]` for any. Default none: no CORS headers, and
    /// browsers refuse cross-origin calls (Grafana's Infinity data source calls from its server,
    /// which needs none).
    pub cors_origins: Vec<String>,
}

/// One API token, optionally limited to some teams.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "ApiTokenRepr")]
pub struct ApiToken {
    /// The secret bearer token.
    pub token: String,
    /// Teams this token may see; absent: every team and the organisation.
    pub teams: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ApiTokenRepr {
    Bare(String),
    Table {
        token: String,
        #[serde(default)]
        teams: Option<Vec<String>>,
    },
}

impl From<ApiTokenRepr> for ApiToken {
    fn from(repr: ApiTokenRepr) -> Self {
        match repr {
            ApiTokenRepr::Bare(token) => Self { token, teams: None },
            ApiTokenRepr::Table { token, teams } => Self { token, teams },
        }
    }
}

/// `[definitions]`: the configurable parts of metrics.md.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DefinitionsConfig {
    /// How long after a deployment an incident or rollback is blamed on it. Default `24h`.
    pub attribution_window: String,
    /// Case-insensitive regex: environment names of the production tier.
    pub production_pattern: String,
    /// Case-insensitive regex on a commit's first line marking a fix. Default `^(revert "|hotfix\b)`.
    pub hotfix_pattern: String,
    /// Pull-request labels marking a fix. Default `["hotfix"]`.
    pub hotfix_labels: Vec<String>,
    /// How far behind the newest event (and the newest delivery) facts stay open to late data
    /// before they are final and their inputs leave the working state. Default `90d`.
    pub horizon: String,
}

impl Default for DefinitionsConfig {
    fn default() -> Self {
        Self {
            horizon: "90d".into(),
            attribution_window: "24h".into(),
            production_pattern: r"(^|[-_./])(prod|production|live)([-_./]|$)".into(),
            hotfix_pattern: r#"^(revert "|hotfix\b)"#.into(),
            hotfix_labels: vec!["hotfix".into()],
        }
    }
}

/// Compiled definitions, ready for the engine.
#[derive(Debug, Clone)]
pub struct Definitions {
    /// Attribution window in seconds.
    pub attribution_window_secs: i64,
    /// Production-tier environment names.
    pub production: Regex,
    /// Commit first lines that mark a fix.
    pub hotfix: Pattern,
    /// Pull-request labels that mark a fix (lower case).
    pub hotfix_labels: Vec<String>,
    /// The working-state horizon in seconds.
    pub horizon_secs: i64,
}

impl DefinitionsConfig {
    /// Compiles the patterns and parses the window, naming the key at fault.
    pub fn compile(&self) -> Result<Definitions, ConfigError> {
        let window = parse_duration_secs(&self.attribution_window).ok_or_else(|| {
            invalid(
                "definitions.attribution_window",
                format!(
                    "`{}` is not a duration like `24h` (units s, m, h, d, w)",
                    self.attribution_window
                ),
            )
        })?;
        let horizon = parse_duration_secs(&self.horizon)
            .filter(|h| *h >= 2 * window && *h >= 86_400)
            .ok_or_else(|| {
                invalid(
                    "definitions.horizon",
                    format!(
                        "`{}` is not a duration of at least a day and twice the attribution window, like `90d`",
                        self.horizon
                    ),
                )
            })?;
        let production = Regex::new(&format!("(?i){}", self.production_pattern))
            .map_err(|e| invalid("definitions.production_pattern", e.to_string()))?;
        let hotfix = Pattern::new(&format!("(?i){}", self.hotfix_pattern))
            .map_err(|e| invalid("definitions.hotfix_pattern", e.to_string()))?;
        Ok(Definitions {
            horizon_secs: horizon,
            attribution_window_secs: window,
            production,
            hotfix,
            hotfix_labels: self
                .hotfix_labels
                .iter()
                .map(|l| l.to_lowercase())
                .collect(),
        })
    }
}

impl Default for Definitions {
    fn default() -> Self {
        DefinitionsConfig::default()
            .compile()
            .expect("default definitions compile")
    }
}

/// One `[[services]]` entry of the catalog.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Canonical service name.
    pub name: String,
    /// Owning team, if any.
    #[serde(default)]
    pub team: Option<String>,
    /// Repositories (`owner/name`) whose changes and deployments belong to this service.
    #[serde(default)]
    pub repos: Vec<RepoMapping>,
    /// Argo CD applications of this service, each optionally pinned to an environment.
    #[serde(default)]
    pub argocd_apps: Vec<ArgoApp>,
    /// PagerDuty service ids or names.
    #[serde(default)]
    pub pagerduty_services: Vec<String>,
    /// Flux Kustomizations and HelmReleases of this service, each optionally pinned to an
    /// environment.
    #[serde(default)]
    pub flux_objects: Vec<FluxObject>,
    /// CDEvents service ids.
    #[serde(default)]
    pub cdevents_services: Vec<String>,
}

/// A Flux object mapped to a service.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FluxObject {
    /// `namespace/name` of the Kustomization or HelmRelease, or its `name` alone (any namespace).
    pub object: String,
    /// The environment its deployments belong to (else its `environment` label, else
    /// `production`).
    #[serde(default)]
    pub environment: Option<String>,
}

/// A catalog entry with where it was written, for errors that name both places of a conflict.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    /// `services[3]`, or `catalog-info.yaml: Component checkout`.
    pub origin: String,
    /// The service.
    pub service: ServiceConfig,
}

/// Checks a whole catalog: names unique and not empty, repositories `owner/name`, and every
/// alias (PagerDuty service, Argo CD app, Flux object, CDEvents service) mapped once. A conflict
/// names both places.
pub fn validate_catalog(entries: &[CatalogEntry]) -> Result<(), ConfigError> {
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut aliases: HashMap<(&str, &str), String> = HashMap::new();
    for entry in entries {
        let at = &entry.origin;
        let service = &entry.service;
        if service.name.trim().is_empty() {
            return Err(invalid(format!("{at}.name"), "must not be empty"));
        }
        if let Some(first) = names.insert(&service.name, at) {
            return Err(invalid(
                format!("{at}.name"),
                format!("`{}` is also the name of {first}", service.name),
            ));
        }
        for (j, repo) in service.repos.iter().enumerate() {
            if repo.repo.split('/').filter(|p| !p.is_empty()).count() < 2 {
                return Err(invalid(
                    format!("{at}.repos[{j}].repo"),
                    format!("`{}` is not `owner/name`", repo.repo),
                ));
            }
        }
        let listed = service
            .pagerduty_services
            .iter()
            .enumerate()
            .map(|(j, a)| ("pagerduty_services", format!("pagerduty_services[{j}]"), a))
            .chain(
                service
                    .argocd_apps
                    .iter()
                    .enumerate()
                    .map(|(j, a)| ("argocd_apps", format!("argocd_apps[{j}].app"), &a.app)),
            )
            .chain(service.flux_objects.iter().enumerate().map(|(j, o)| {
                (
                    "flux_objects",
                    format!("flux_objects[{j}].object"),
                    &o.object,
                )
            }))
            .chain(
                service
                    .cdevents_services
                    .iter()
                    .enumerate()
                    .map(|(j, a)| ("cdevents_services", format!("cdevents_services[{j}]"), a)),
            );
        for (kind, place, alias) in listed {
            let place = format!("{at}.{place}");
            if alias.trim().is_empty() {
                return Err(invalid(place, "must not be empty"));
            }
            if let Some(first) = aliases.insert((kind, alias), place.clone()) {
                return Err(invalid(
                    place,
                    format!("`{alias}` is also mapped by {first}"),
                ));
            }
        }
    }
    Ok(())
}

/// An Argo CD application mapped to a service.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArgoApp {
    /// The Application's `metadata.name`.
    pub app: String,
    /// The environment its deployments and health reports belong to (metrics.md §1: else the
    /// Application's `environment` label, else `production`).
    #[serde(default)]
    pub environment: Option<String>,
}

/// A repository mapped to a service, optionally limited to paths (monorepos).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RepoMapping {
    /// `owner/name`.
    pub repo: String,
    /// Path globs; empty: the whole repository.
    #[serde(default)]
    pub paths: Vec<String>,
}

/// Keys whose environment values are comma-separated lists.
const LIST_KEYS: &[&str] = &["secrets", "tokens", "hotfix_labels"];

impl Config {
    /// Parses TOML text, applies `DORAFLOW_*` overrides from `env`, and validates.
    pub fn parse(text: &str, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax(e.to_string()))?;
        let mut overrides: BTreeMap<&String, &String> = BTreeMap::new();
        for (name, value) in env {
            if name.starts_with("DORAFLOW_") && name.contains("__") {
                overrides.insert(name, value);
            }
        }
        for (name, value) in overrides {
            apply_override(&mut table, name, value)?;
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Syntax(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: patterns, durations, addresses, catalog consistency.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.definitions.compile()?;
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "server.listen",
                format!(
                    "`{}` is not an address like 127.0.0.1:8080",
                    self.server.listen
                ),
            ));
        }
        if self.server.max_body_bytes == 0 {
            return Err(invalid("server.max_body_bytes", "must be above 0"));
        }
        if self.storage.data_dir.trim().is_empty() {
            return Err(invalid("storage.data_dir", "must not be empty"));
        }
        for (i, origin) in self.api.cors_origins.iter().enumerate() {
            let well_formed = origin == "*"
                || ((origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin.ends_with('/')
                    && origin.is_ascii()
                    && !origin.contains(char::is_whitespace));
            if !well_formed {
                return Err(invalid(
                    format!("api.cors_origins[{i}]"),
                    format!("`{origin}` is not an origin like https://grafana.example.com, or *"),
                ));
            }
        }
        if let Some(kafka) = &self.storage.kafka {
            if kafka.partitions == 0 {
                return Err(invalid("storage.kafka.partitions", "must be at least 1"));
            }
            if kafka.replication < 1 {
                return Err(invalid("storage.kafka.replication", "must be at least 1"));
            }
        }
        validate_catalog(&self.catalog_entries())?;
        for (i, token) in self.api.tokens.iter().enumerate() {
            if token.token.is_empty() {
                return Err(invalid(
                    format!("api.tokens[{i}].token"),
                    "must not be empty",
                ));
            }
        }
        Ok(())
    }

    /// The `[[services]]` entries with their places.
    pub fn catalog_entries(&self) -> Vec<CatalogEntry> {
        self.services
            .iter()
            .enumerate()
            .map(|(i, service)| CatalogEntry {
                origin: format!("services[{i}]"),
                service: service.clone(),
            })
            .collect()
    }

    /// Human-readable warnings for a valid but probably unintended config.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let sources = &self.sources;
        for (name, empty, key) in [
            (
                "GitHub",
                sources.github.secrets.is_empty(),
                "github.secrets",
            ),
            ("GitLab", sources.gitlab.tokens.is_empty(), "gitlab.tokens"),
            (
                "PagerDuty",
                sources.pagerduty.secrets.is_empty(),
                "pagerduty.secrets",
            ),
            ("Argo CD", sources.argocd.tokens.is_empty(), "argocd.tokens"),
            (
                "CDEvents",
                sources.cdevents.tokens.is_empty(),
                "cdevents.tokens",
            ),
            ("Flux", sources.flux.secrets.is_empty(), "flux.secrets"),
        ] {
            if empty {
                warnings.push(format!(
                    "sources.{key} is empty: every {name} delivery will be refused with 401"
                ));
            }
        }
        if self.api.tokens.is_empty() {
            warnings.push(
                "api.tokens is empty: the metrics API is open to anyone who can reach it".into(),
            );
        }
        warnings
    }
}

/// Sets `DORAFLOW_A__B__C=value` at `a.b.c` in the table.
fn apply_override(table: &mut toml::Table, name: &str, raw: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = name["DORAFLOW_".len()..]
        .split("__")
        .map(|p| p.to_lowercase())
        .collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::Syntax(format!(
            "environment variable {name}: empty key segment"
        )));
    }
    let leaf = path.last().expect("split yields one segment").clone();
    let value = env_value(&leaf, raw).map_err(|message| {
        ConfigError::Syntax(format!("environment variable {name}: {message}"))
    })?;
    let mut node = table;
    for key in &path[..path.len() - 1] {
        let entry = node
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry.as_table_mut().ok_or_else(|| {
            ConfigError::Syntax(format!(
                "environment variable {name}: `{key}` is not a section"
            ))
        })?;
    }
    node.insert(leaf, value);
    Ok(())
}

/// Reads an environment value: inline TOML for `[..]`/`{..}`, comma lists for list keys,
/// numbers and booleans as such, anything else as a string.
fn env_value(leaf: &str, raw: &str) -> Result<toml::Value, String> {
    let trimmed = raw.trim();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        let doc: toml::Table = format!("v = {trimmed}")
            .parse()
            .map_err(|e: toml::de::Error| e.to_string())?;
        return Ok(doc["v"].clone());
    }
    if LIST_KEYS.contains(&leaf) {
        return Ok(toml::Value::Array(
            trimmed
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ));
    }
    if let Ok(n) = trimmed.parse::<i64>() {
        return Ok(toml::Value::Integer(n));
    }
    if let Ok(b) = trimmed.parse::<bool>() {
        return Ok(toml::Value::Boolean(b));
    }
    Ok(toml::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, &HashMap::new())
    }

    #[test]
    fn the_interfaces_example_parses() {
        let config = parse(
            r#"
[server]
listen = "127.0.0.1:9000"
[sources.github]
secrets = ["a", "b"]
[api]
tokens = [ { token = "t-admin" }, { token = "t-pay", teams = ["payments"] } ]
[definitions]
attribution_window = "12h"
[[services]]
name = "checkout"
team = "payments"
repos = [ { repo = "acme/checkout" }, { repo = "acme/mono", paths = ["services/checkout/**"] } ]
pagerduty_services = ["PXXXXXX", "Checkout API"]
"#,
        )
        .unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:9000");
        assert_eq!(config.sources.github.secrets, vec!["a", "b"]);
        assert_eq!(
            config.api.tokens[1].teams.as_deref(),
            Some(&["payments".to_string()][..])
        );
        assert_eq!(
            config
                .definitions
                .compile()
                .unwrap()
                .attribution_window_secs,
            43_200
        );
        assert_eq!(
            config.services[0].repos[1].paths,
            vec!["services/checkout/**"]
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse("[server]\nlisten_on = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen_on"), "{err}");
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = parse("[definitions]\nattribution_window = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("definitions.attribution_window"), "{err}");
        let err = parse("[definitions]\nhotfix_pattern = \"(\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("definitions.hotfix_pattern"), "{err}");
        let err = parse("[server]\nlisten = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.listen"), "{err}");
        let err = parse("[[services]]\nname = \"a\"\n[[services]]\nname = \"a\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("services[1].name"), "{err}");
        let err = parse(
            "[[services]]\nname = \"a\"\nargocd_apps = [{ app = \"x\" }]\n\
             [[services]]\nname = \"b\"\nargocd_apps = [{ app = \"x\", environment = \"prod\" }]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("services[1].argocd_apps[0].app")
                && err.contains("services[0].argocd_apps[0]"),
            "{err}"
        );
    }

    #[test]
    fn environment_overrides_win() {
        let env: HashMap<String, String> = [
            ("DORAFLOW_SOURCES__GITHUB__SECRETS", "a,b"),
            ("DORAFLOW_SERVER__LISTEN", "127.0.0.1:9999"),
            ("DORAFLOW_SERVER__MAX_BODY_BYTES", "1000"),
            ("DORAFLOW_API__TOKENS", "t1"),
            ("UNRELATED", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\n", &env).unwrap();
        assert_eq!(config.sources.github.secrets, vec!["a", "b"]);
        assert_eq!(config.server.listen, "127.0.0.1:9999");
        assert_eq!(config.server.max_body_bytes, 1000);
        assert_eq!(config.api.tokens[0].token, "t1");
        assert!(config.api.tokens[0].teams.is_none());
    }
}
