//! `doraflow check-config`: validates the configuration and prints what it will do.

use std::path::Path;

/// Validates and reports.
pub fn run(path: Option<&Path>) -> anyhow::Result<()> {
    let config = crate::config_file::load(path)?;
    doraflow_aggregator::Catalog::new(&config.services)?;
    println!("configuration is valid");
    println!("  listen: {}", config.server.listen);
    println!("  data dir: {}", config.storage.data_dir);
    println!(
        "  sources: github ({} secrets), pagerduty ({} secrets)",
        config.sources.github.secrets.len(),
        config.sources.pagerduty.secrets.len()
    );
    println!("  services: {}", config.services.len());
    println!("  api tokens: {}", config.api.tokens.len());
    for warning in config.warnings() {
        println!("warning: {warning}");
    }
    Ok(())
}
