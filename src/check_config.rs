//! `doraflow check-config`: validates the configuration and prints what it will do.

use std::path::Path;

/// Validates and reports.
pub fn run(path: Option<&Path>) -> anyhow::Result<()> {
    let config = crate::config_file::load(path)?;
    let services = crate::catalog_files::services(&config)?;
    doraflow_aggregator::Catalog::new(&services)?;
    println!("configuration is valid");
    println!("  listen: {}", config.server.listen);
    println!("  data dir: {}", config.storage.data_dir);
    let sources = &config.sources;
    println!(
        "  sources: github ({} secrets), gitlab ({} tokens), pagerduty ({} secrets), argocd ({} tokens), cdevents ({} tokens), flux ({} secrets)",
        sources.github.secrets.len(),
        sources.gitlab.tokens.len(),
        sources.pagerduty.secrets.len(),
        sources.argocd.tokens.len(),
        sources.cdevents.tokens.len(),
        sources.flux.secrets.len(),
    );
    println!(
        "  services: {} ({} from [[services]], the rest from catalog.backstage)",
        services.len(),
        config.services.len()
    );
    println!("  api tokens: {}", config.api.tokens.len());
    for warning in config.warnings() {
        println!("warning: {warning}");
    }
    Ok(())
}
