//! The whole catalog: `[[services]]` plus the `Component`s of the Backstage files that
//! `catalog.backstage` globs match, checked together so that a repeated name or alias is an
//! error naming both places.

use anyhow::Context;
use doraflow_schemas::Config;
use doraflow_schemas::config::{CatalogEntry, ServiceConfig, validate_catalog};

/// Every catalog entry with its origin, validated.
pub fn entries(config: &Config) -> anyhow::Result<Vec<CatalogEntry>> {
    let mut entries = config.catalog_entries();
    for pattern in &config.catalog.backstage {
        let paths = glob::glob(pattern)
            .with_context(|| format!("catalog.backstage: `{pattern}` is not a valid glob"))?;
        let mut matched = 0;
        for path in paths {
            let path = path.with_context(|| format!("catalog.backstage: `{pattern}`"))?;
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the Backstage file {}", path.display()))?;
            entries.extend(doraflow_schemas::backstage::components(
                &text,
                &path.display().to_string(),
            )?);
            matched += 1;
        }
        if matched == 0 {
            tracing::warn!("catalog.backstage: `{pattern}` matches no file");
        }
    }
    validate_catalog(&entries)?;
    Ok(entries)
}

/// The services of the whole catalog.
pub fn services(config: &Config) -> anyhow::Result<Vec<ServiceConfig>> {
    Ok(entries(config)?.into_iter().map(|e| e.service).collect())
}

/// `doraflow catalog check`: validates the catalog and lists every service with its aliases.
pub fn check(path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let config = crate::config_file::load(path)?;
    let entries = entries(&config)?;
    doraflow_aggregator::Catalog::new(
        &entries
            .iter()
            .map(|e| e.service.clone())
            .collect::<Vec<_>>(),
    )?;
    println!("catalog is valid: {} services", entries.len());
    for entry in &entries {
        let s = &entry.service;
        println!(
            "  {}  team: {}  (from {})",
            s.name,
            s.team.as_deref().unwrap_or("-"),
            entry.origin
        );
        let mut aliases: Vec<String> = s.repos.iter().map(|r| format!("repo {}", r.repo)).collect();
        aliases.extend(s.argocd_apps.iter().map(|a| format!("argocd {}", a.app)));
        aliases.extend(s.flux_objects.iter().map(|o| format!("flux {}", o.object)));
        aliases.extend(
            s.pagerduty_services
                .iter()
                .map(|p| format!("pagerduty {p}")),
        );
        aliases.extend(s.cdevents_services.iter().map(|c| format!("cdevents {c}")));
        if !aliases.is_empty() {
            println!("      {}", aliases.join(", "));
        }
    }
    Ok(())
}
