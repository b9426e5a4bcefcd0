//! The service catalog: which service a repository, deployment or incident belongs to
//! (metrics.md §1), built from `[[services]]` with the default naming for everything else.

use std::borrow::Cow;
use std::collections::HashMap;

use doraflow_schemas::config::ServiceConfig;
use doraflow_schemas::event::AppKind;
use globset::{Glob, GlobSet, GlobSetBuilder};

/// The environment of an application (Argo CD, Flux, CDEvents) with neither a catalog pin nor
/// a label.
pub const APP_DEFAULT_ENVIRONMENT: &str = "production";

/// One repository mapped to one service, with optional path globs.
#[derive(Debug, Clone)]
pub struct RepoBinding {
    /// Canonical service name.
    pub service: String,
    /// Paths that belong to the service; `None`: the whole repository.
    pub paths: Option<GlobSet>,
}

impl RepoBinding {
    /// True when a change touching `files` belongs to this binding's service.
    pub fn touches(&self, files: &[String]) -> bool {
        match &self.paths {
            None => true,
            Some(globs) => files.iter().any(|f| globs.is_match(f)),
        }
    }
}

/// The catalog as the engine uses it.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    teams: HashMap<String, Option<String>>,
    repos: HashMap<String, Vec<RepoBinding>>,
    /// The same bindings by service: (lower-case repository, binding), sorted by repository.
    by_service: HashMap<String, Vec<(String, RepoBinding)>>,
    /// PagerDuty service ids and names, CDEvents service ids → service.
    incident_aliases: HashMap<String, String>,
    /// Application (tool, name) → (service, pinned environment): Argo CD apps, Flux objects
    /// (`namespace/name` or `name`), CDEvents service ids.
    apps: HashMap<AppKind, HashMap<String, (String, Option<String>)>>,
    order: Vec<String>,
}

/// A catalog entry that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("services[{index}].repos: {message}")]
pub struct CatalogError {
    index: usize,
    message: String,
}

/// The key a repository is known by, whatever the case the payloads spell it in: its name in
/// lower case (borrowed when it already is).
pub fn repo_key(name: &str) -> Cow<'_, str> {
    if name
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        Cow::Owned(name.to_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

impl Catalog {
    /// Builds the catalog from the configured services.
    pub fn new(services: &[ServiceConfig]) -> Result<Self, CatalogError> {
        let mut catalog = Catalog::default();
        for (index, service) in services.iter().enumerate() {
            catalog
                .teams
                .insert(service.name.clone(), service.team.clone());
            catalog.order.push(service.name.clone());
            for mapping in &service.repos {
                let paths = if mapping.paths.is_empty() {
                    None
                } else {
                    let mut builder = GlobSetBuilder::new();
                    for pattern in &mapping.paths {
                        let glob = Glob::new(pattern).map_err(|e| CatalogError {
                            index,
                            message: format!("path glob `{pattern}`: {e}"),
                        })?;
                        builder.add(glob);
                    }
                    Some(builder.build().map_err(|e| CatalogError {
                        index,
                        message: e.to_string(),
                    })?)
                };
                let binding = RepoBinding {
                    service: service.name.clone(),
                    paths,
                };
                let repo = repo_key(&mapping.repo).into_owned();
                catalog
                    .by_service
                    .entry(service.name.clone())
                    .or_default()
                    .push((repo.clone(), binding.clone()));
                catalog.repos.entry(repo).or_default().push(binding);
            }
            if let Some(list) = catalog.by_service.get_mut(&service.name) {
                list.sort_by(|a, b| a.0.cmp(&b.0));
            }
            for app in &service.argocd_apps {
                catalog.apps.entry(AppKind::Argocd).or_default().insert(
                    app.app.clone(),
                    (service.name.clone(), app.environment.clone()),
                );
            }
            for object in &service.flux_objects {
                catalog.apps.entry(AppKind::Flux).or_default().insert(
                    object.object.clone(),
                    (service.name.clone(), object.environment.clone()),
                );
            }
            for id in &service.cdevents_services {
                catalog
                    .apps
                    .entry(AppKind::Cdevents)
                    .or_default()
                    .insert(id.clone(), (service.name.clone(), None));
                catalog
                    .incident_aliases
                    .insert(id.clone(), service.name.clone());
            }
            for alias in &service.pagerduty_services {
                catalog
                    .incident_aliases
                    .insert(alias.clone(), service.name.clone());
            }
        }
        Ok(catalog)
    }

    /// The bindings of a repository, by its name in any case.
    fn bindings(&self, repo: &str) -> Option<&Vec<RepoBinding>> {
        if self.repos.is_empty() {
            return None;
        }
        self.repos.get(&*repo_key(repo))
    }

    /// The services of a repository: its catalog services, else one service named after it.
    pub fn repo_services<'a>(&'a self, repo: &'a str) -> Vec<&'a str> {
        match self.bindings(repo) {
            Some(bindings) => bindings.iter().map(|b| b.service.as_str()).collect(),
            None => vec![repo],
        }
    }

    /// True when some service takes only part of the repository (path globs): its changes'
    /// file lists are then needed.
    pub fn repo_has_paths(&self, repo: &str) -> bool {
        self.bindings(repo)
            .is_some_and(|bindings| bindings.iter().any(|b| b.paths.is_some()))
    }

    /// Repositories bound to a service (lower-case names, sorted), with their bindings. An
    /// uncatalogued `owner/name` service is its own repository.
    pub fn repos_of(&self, service: &str) -> Cow<'_, [(String, RepoBinding)]> {
        if let Some(list) = self.by_service.get(service) {
            return Cow::Borrowed(list);
        }
        if !self.teams.contains_key(service) && service.contains('/') {
            return Cow::Owned(vec![(
                repo_key(service).into_owned(),
                RepoBinding {
                    service: service.to_string(),
                    paths: None,
                },
            )]);
        }
        Cow::Borrowed(&[])
    }

    /// The service of a deployment (metrics.md §1): the repository's only service; for a
    /// repository mapped to several, the payload's service, else the service whose name followed
    /// by `-`, `_`, `.` or `/` starts the environment name; else none.
    pub fn deployment_service<'a>(
        &'a self,
        repo: &'a str,
        hint: Option<&str>,
        environment: &str,
    ) -> Option<&'a str> {
        let Some(bindings) = self.bindings(repo) else {
            return Some(repo);
        };
        if bindings.len() == 1 {
            return Some(&bindings[0].service);
        }
        if let Some(hint) = hint
            && let Some(b) = bindings.iter().find(|b| b.service == hint)
        {
            return Some(&b.service);
        }
        let env = environment.to_lowercase();
        bindings
            .iter()
            .filter(|b| {
                let name = b.service.to_lowercase();
                env.strip_prefix(&name)
                    .is_some_and(|rest| rest.starts_with(['-', '_', '.', '/']))
            })
            .max_by_key(|b| b.service.len())
            .map(|b| b.service.as_str())
    }

    /// The service of an incident: the catalog alias of its service id or name, else the name.
    pub fn incident_service<'a>(
        &'a self,
        id: Option<&'a str>,
        name: Option<&'a str>,
    ) -> Option<&'a str> {
        id.and_then(|i| self.incident_aliases.get(i))
            .or_else(|| name.and_then(|n| self.incident_aliases.get(n)))
            .map(String::as_str)
            .or(name)
            .or(id)
    }

    /// The service and environment of an application (metrics.md §1): the catalog's alias and
    /// pin; else the application's own name, its `environment` label, else `production`. A
    /// Flux object `namespace/name` is looked up as such, then by its name alone; unmapped, its
    /// service is its name (the namespace usually names the environment or the cluster).
    pub fn app<'a>(
        &'a self,
        kind: AppKind,
        name: &'a str,
        label: Option<&'a str>,
    ) -> (&'a str, &'a str) {
        let label = label.filter(|l| !l.is_empty());
        let aliases = self.apps.get(&kind);
        let bare_name = match kind {
            AppKind::Flux => name.rsplit_once('/').map_or(name, |(_, n)| n),
            _ => name,
        };
        let mapped = aliases.and_then(|a| {
            a.get(name)
                .or_else(|| (bare_name != name).then(|| a.get(bare_name)).flatten())
        });
        match mapped {
            Some((service, pin)) => (
                service,
                pin.as_deref().or(label).unwrap_or(APP_DEFAULT_ENVIRONMENT),
            ),
            None => (bare_name, label.unwrap_or(APP_DEFAULT_ENVIRONMENT)),
        }
    }

    /// The team of a service, if the catalog names one.
    pub fn team_of(&self, service: &str) -> Option<&str> {
        self.teams.get(service).and_then(|t| t.as_deref())
    }

    /// Catalogued services in configuration order.
    pub fn services(&self) -> &[String] {
        &self.order
    }

    /// Catalogued services of a team.
    pub fn services_of_team(&self, team: &str) -> Vec<String> {
        self.order
            .iter()
            .filter(|s| self.team_of(s) == Some(team))
            .cloned()
            .collect()
    }

    /// True when a team is named by some service.
    pub fn has_team(&self, team: &str) -> bool {
        self.teams.values().any(|t| t.as_deref() == Some(team))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doraflow_schemas::config::RepoMapping;

    fn catalog() -> Catalog {
        let service =
            |name: &str, team: &str, repos: Vec<RepoMapping>, pd: &[&str]| ServiceConfig {
                name: name.into(),
                team: Some(team.into()),
                repos,
                pagerduty_services: pd.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            };
        let repo = |r: &str, paths: &[&str]| RepoMapping {
            repo: r.into(),
            paths: paths.iter().map(|s| s.to_string()).collect(),
        };
        Catalog::new(&[
            service(
                "checkout",
                "payments",
                vec![
                    repo("acme/checkout", &[]),
                    repo("acme/mono", &["services/checkout/**"]),
                ],
                &["PXXXXXX", "Checkout API"],
            ),
            service(
                "cart",
                "shop",
                vec![repo("acme/mono", &["services/cart/**"])],
                &[],
            ),
        ])
        .unwrap()
    }

    #[test]
    fn repositories_map_to_services_or_name_themselves() {
        let c = catalog();
        assert_eq!(
            c.deployment_service("acme/checkout", None, "production"),
            Some("checkout")
        );
        assert_eq!(
            c.deployment_service("acme/other", None, "production"),
            Some("acme/other")
        );
        assert_eq!(c.repos_of("acme/other")[0].0, "acme/other");
        assert_eq!(c.repos_of("checkout").len(), 2);
    }

    #[test]
    fn monorepo_deployments_use_the_payload_then_the_environment_prefix() {
        let c = catalog();
        assert_eq!(
            c.deployment_service("acme/mono", Some("cart"), "production"),
            Some("cart")
        );
        assert_eq!(
            c.deployment_service("acme/mono", None, "cart-production"),
            Some("cart")
        );
        assert_eq!(
            c.deployment_service("acme/mono", None, "checkout/prod"),
            Some("checkout")
        );
        assert_eq!(
            c.deployment_service("acme/mono", None, "cartography-prod"),
            None
        );
        assert_eq!(c.deployment_service("acme/mono", None, "production"), None);
    }

    #[test]
    fn path_globs_decide_which_changes_touch_a_service() {
        let c = catalog();
        let repos = c.repos_of("cart");
        assert_eq!(repos.len(), 1);
        let cart = &repos[0].1;
        assert!(c.repo_has_paths("acme/mono"));
        assert!(!c.repo_has_paths("acme/checkout"));
        assert_eq!(c.repo_services("acme/mono"), vec!["checkout", "cart"]);
        assert_eq!(c.repo_services("acme/other"), vec!["acme/other"]);
        assert!(cart.touches(&["services/cart/src/main.rs".into()]));
        assert!(!cart.touches(&["services/checkout/x".into(), "README.md".into()]));
    }

    #[test]
    fn incidents_map_by_id_then_name_then_default_to_the_name() {
        let c = catalog();
        assert_eq!(
            c.incident_service(Some("PXXXXXX"), Some("whatever")),
            Some("checkout")
        );
        assert_eq!(
            c.incident_service(Some("P1"), Some("Checkout API")),
            Some("checkout")
        );
        assert_eq!(
            c.incident_service(Some("P1"), Some("pig208")),
            Some("pig208")
        );
        assert_eq!(c.services_of_team("payments"), vec!["checkout"]);
    }
}
