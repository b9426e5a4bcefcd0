//! Backstage `catalog-info.yaml` files as catalog entries: each `Component` becomes a service,
//! `spec.owner` its team, and its annotations its aliases:
//!
//! | annotation | catalog field |
//! |---|---|
//! | `github.com/project-slug` | `repos` |
//! | `gitlab.com/project-slug` | `repos` |
//! | `pagerduty.com/service-id` | `pagerduty_services` |
//! | `argocd/app-name` | `argocd_apps` (comma-separated names allowed) |
//!
//! Other kinds (`System`, `API`, `Group`, `Location`...) are skipped. Parsing takes text, so the
//! crate stays free of I/O; the binary reads the files.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{ArgoApp, CatalogEntry, ConfigError, RepoMapping, ServiceConfig};

#[derive(Deserialize)]
struct Entity {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    spec: Spec,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct Spec {
    #[serde(default)]
    owner: Option<String>,
}

/// The team of an owner reference: `payments`, `group:payments`, `group:default/payments`.
fn team_of(owner: &str) -> String {
    let name = owner.rsplit_once(':').map_or(owner, |(_, rest)| rest);
    name.rsplit_once('/').map_or(name, |(_, n)| n).to_string()
}

fn list(value: Option<&String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// The `Component`s of one `catalog-info.yaml` (several documents allowed), named by `file`
/// in errors and in their origin.
pub fn components(text: &str, file: &str) -> Result<Vec<CatalogEntry>, ConfigError> {
    let mut entries = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = serde_yaml_ng::Value::deserialize(document)
            .map_err(|e| ConfigError::Syntax(format!("{file}: {e}")))?;
        if value.is_null() {
            continue;
        }
        let entity: Entity = serde_yaml_ng::from_value(value)
            .map_err(|e| ConfigError::Syntax(format!("{file}: document {}: {e}", index + 1)))?;
        if entity.kind != "Component" {
            continue;
        }
        let name = entity.metadata.name.trim().to_string();
        if name.is_empty() {
            return Err(ConfigError::Invalid {
                key: format!("{file}: document {}: metadata.name", index + 1),
                message: "a Component needs a name".into(),
            });
        }
        let annotations = &entity.metadata.annotations;
        let repos = ["github.com/project-slug", "gitlab.com/project-slug"]
            .iter()
            .flat_map(|key| list(annotations.get(*key)))
            .map(|repo| RepoMapping {
                repo,
                paths: vec![],
            })
            .collect();
        entries.push(CatalogEntry {
            origin: format!("{file}: Component {name}"),
            service: ServiceConfig {
                team: entity.spec.owner.as_deref().map(team_of),
                repos,
                argocd_apps: list(annotations.get("argocd/app-name"))
                    .into_iter()
                    .map(|app| ArgoApp {
                        app,
                        environment: None,
                    })
                    .collect(),
                pagerduty_services: list(annotations.get("pagerduty.com/service-id")),
                name,
                ..Default::default()
            },
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate_catalog;

    const CHECKOUT: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  annotations:
    github.com/project-slug: acme/checkout
    pagerduty.com/service-id: PCHECK1
    argocd/app-name: checkout-prod, checkout-eu
spec:
  type: service
  lifecycle: production
  owner: group:default/payments
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: shop
spec:
  owner: payments
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: cart
  annotations:
    gitlab.com/project-slug: acme/cart
spec:
  owner: team-cart
"#;

    #[test]
    fn components_become_services_with_their_aliases() {
        let entries = components(CHECKOUT, "shop/catalog-info.yaml").unwrap();
        assert_eq!(entries.len(), 2);
        let checkout = &entries[0];
        assert_eq!(
            checkout.origin,
            "shop/catalog-info.yaml: Component checkout"
        );
        assert_eq!(checkout.service.name, "checkout");
        assert_eq!(checkout.service.team.as_deref(), Some("payments"));
        assert_eq!(checkout.service.repos[0].repo, "acme/checkout");
        assert_eq!(checkout.service.pagerduty_services, vec!["PCHECK1"]);
        let apps: Vec<&str> = checkout
            .service
            .argocd_apps
            .iter()
            .map(|a| a.app.as_str())
            .collect();
        assert_eq!(apps, vec!["checkout-prod", "checkout-eu"]);
        assert_eq!(entries[1].service.name, "cart");
        assert_eq!(entries[1].service.team.as_deref(), Some("team-cart"));
        assert_eq!(entries[1].service.repos[0].repo, "acme/cart");
        validate_catalog(&entries).unwrap();
    }

    #[test]
    fn a_repeated_alias_names_both_places() {
        let mut entries = components(CHECKOUT, "shop/catalog-info.yaml").unwrap();
        entries.extend(
            components(
                "kind: Component\nmetadata:\n  name: payments-api\n  annotations:\n    \
                 pagerduty.com/service-id: PCHECK1\n",
                "payments/catalog-info.yaml",
            )
            .unwrap(),
        );
        let error = validate_catalog(&entries).unwrap_err().to_string();
        assert!(
            error.contains(
                "payments/catalog-info.yaml: Component payments-api.pagerduty_services[0]"
            ) && error.contains("shop/catalog-info.yaml: Component checkout.pagerduty_services[0]"),
            "{error}"
        );
    }

    #[test]
    fn bad_yaml_and_nameless_components_say_where() {
        let error = components("kind: [", "x.yaml").unwrap_err().to_string();
        assert!(error.starts_with("x.yaml:"), "{error}");
        let error = components("kind: Component\nmetadata: {}\n", "y.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("y.yaml: document 1: metadata.name"),
            "{error}"
        );
    }
}
