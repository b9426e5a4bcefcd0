//! Reads the configuration file and the environment into a validated [`Config`].

use std::path::Path;

use anyhow::Context;
use doraflow_schemas::Config;

/// Loads `path` (or an empty config when none is given) with `DORAFLOW_*` overrides, and turns
/// the process's metric recording on or off as `server.instrumentation` says.
pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
    let text = match path {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?,
        None => String::new(),
    };
    let env = std::env::vars().collect();
    let shown = path.map_or("(no config file)".to_string(), |p| p.display().to_string());
    let config =
        Config::parse(&text, &env).with_context(|| format!("invalid configuration in {shown}"))?;
    doraflow_telemetry::set_recording(config.server.instrumentation);
    Ok(config)
}
