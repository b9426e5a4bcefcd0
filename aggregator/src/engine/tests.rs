//! Engine tests on plain values: each metric rule on a small scenario, and order and duplicate
//! independence.

use doraflow_schemas::config::{ArgoApp, Definitions, FluxObject, ServiceConfig};
use doraflow_schemas::event::{
    AppKind, AppRef, Commit, DeploymentState, DeploymentUpdate, IncidentChange, IncidentUpdate,
    PullRequestMerged, Push, Tier,
};
use doraflow_schemas::fact::FailureReason;
use doraflow_schemas::time::{Timestamp, parse_rfc3339};
use doraflow_schemas::{Event, LogRecord, Outcome};

use super::{Engine, EngineState, ServiceFacts};
use crate::catalog::Catalog;

fn t(day: u32, hour: u32) -> Timestamp {
    parse_rfc3339(&format!("2026-03-{day:02}T{hour:02}:00:00Z")).unwrap()
}

fn record(key: &str, event: Event) -> LogRecord {
    LogRecord {
        delivery: key.into(),
        source: "github".into(),
        received_at: t(1, 0),
        headers: vec![],
        body: Default::default(),
        outcome: Outcome::Events {
            events: vec![event],
        },
    }
}

fn push(before: &str, after: &str, commits: &[(&str, Timestamp, &str)]) -> Event {
    Event::Push(Push {
        repo: "acme/app".into(),
        branch: "main".into(),
        default_branch: "main".into(),
        before: before.into(),
        after: after.into(),
        forced: false,
        pushed_at: commits.last().map_or(t(1, 0), |c| c.1),
        commits: commits
            .iter()
            .map(|(sha, at, title)| Commit {
                sha: (*sha).into(),
                timestamp: *at,
                title: (*title).into(),
                files: vec![],
            })
            .collect(),
        commits_not_listed: 0,
    })
}

fn deploy(id: &str, sha: &str, env: &str, state: DeploymentState, at: Timestamp) -> Event {
    Event::Deployment(DeploymentUpdate {
        id: id.into(),
        repo: Some("acme/app".into()),
        service_hint: None,
        environment: env.into(),
        revision: sha.into(),
        state,
        at,
        tier: None,
        app: None,
    })
}

fn incident(id: &str, change: IncidentChange, at: Timestamp, title: &str) -> Event {
    Event::Incident(IncidentUpdate {
        id: id.into(),
        service_id: Some("PAPP".into()),
        service_name: Some("App API".into()),
        title: title.into(),
        change,
        occurred_at: at,
        created_at: None,
    })
}

fn engine() -> Engine {
    let catalog = Catalog::new(&[ServiceConfig {
        name: "app".into(),
        team: Some("core".into()),
        repos: vec![doraflow_schemas::config::RepoMapping {
            repo: "acme/app".into(),
            paths: vec![],
        }],
        pagerduty_services: vec!["PAPP".into()],
        ..Default::default()
    }])
    .unwrap();
    Engine::new(EngineState::default(), catalog, Definitions::default())
}

fn facts_of(records: &[LogRecord]) -> ServiceFacts {
    let mut engine = engine();
    for r in records {
        engine.apply(r);
    }
    engine.derive("app")
}

use DeploymentState::{Failure, Pending, Success};

/// A scenario touching every rule of issue 2's engine.
fn scenario() -> Vec<LogRecord> {
    vec![
        record(
            "p1",
            push(
                "0000",
                "c2",
                &[("c1", t(1, 8), "feat: a"), ("c2", t(1, 9), "feat: b")],
            ),
        ),
        record("p2", push("c2", "c3", &[("c3", t(2, 8), "feat: c")])),
        record("p3", push("c3", "c4", &[("c4", t(3, 8), "hotfix: d")])),
        // d1 deploys c1, c2 at 10:00 on the 1st.
        record("d1a", deploy("1", "c2", "production", Pending, t(1, 9))),
        record("d1b", deploy("1", "c2", "production", Success, t(1, 10))),
        // d2 deploys c3; an incident opens 2 h later and resolves 5 h after it finished.
        record("d2", deploy("2", "c3", "production", Success, t(2, 10))),
        record(
            "i1a",
            incident("I1", IncidentChange::Triggered, t(2, 12), "Checkout down"),
        ),
        record(
            "i1b",
            incident("I1", IncidentChange::Resolved, t(2, 15), "Checkout down"),
        ),
        // A staging deployment and a failed attempt never count as deployments.
        record("d3", deploy("3", "c4", "staging", Success, t(3, 9))),
        record("d4", deploy("4", "c4", "production", Failure, t(3, 9))),
        // d5 deploys c4 (a hotfix: rework); d6 rolls back to c3 an hour later.
        record("d5", deploy("5", "c4", "production", Success, t(3, 10))),
        record("d6", deploy("6", "c3", "production", Success, t(3, 11))),
    ]
}

#[test]
fn every_rule_of_the_scenario_holds() {
    let facts = facts_of(&scenario());
    let d = |id: &str| {
        facts
            .deployments
            .iter()
            .find(|d| *d.id == format!("github:{id}"))
            .unwrap()
    };

    assert_eq!(d("1").changes, 2);
    assert_eq!(d("1").lead_time_p50, Some(3600.0));
    assert!(d("1").failure_reasons.is_empty());

    assert_eq!(d("2").changes, 1);
    assert_eq!(d("2").failure_reasons, vec![FailureReason::Incident]);
    assert_eq!(d("2").incidents, vec!["github:I1"]);
    assert_eq!(d("2").detected_at, Some(t(2, 12)));
    assert_eq!(d("2").recovered_at, Some(t(2, 15)));
    assert_eq!(d("2").recovery_secs(), Some(5.0 * 3600.0));

    assert!(!d("3").production);
    assert!(!d("4").succeeded);

    assert_eq!(d("5").changes, 1);
    assert!(d("5").rework, "a deployment of only hotfixes is rework");
    assert_eq!(d("5").failure_reasons, vec![FailureReason::Rollback]);
    assert_eq!(d("5").rolled_back_by.as_deref(), Some("github:6"));
    assert_eq!(d("5").recovered_at, Some(t(3, 11)));

    assert!(d("6").rollback);
    assert_eq!(d("6").changes, 0);
    assert!(d("6").rework);

    let c = |sha: &str| facts.changes.iter().find(|c| *c.sha() == *sha).unwrap();
    assert_eq!(c("c1").lead_time(), Some(2.0 * 3600.0));
    assert_eq!(
        c("c4").deployed_by.as_deref(),
        Some("github:5"),
        "the staging deploy does not count"
    );
    assert!(c("c4").fix);
    assert_eq!(
        facts.incidents[0].attributed_to.as_deref(),
        Some("github:2")
    );
}

#[test]
fn any_arrival_order_and_any_duplicates_give_the_same_facts() {
    let records = scenario();
    let expected = facts_of(&records);
    let mut reversed = records.clone();
    reversed.reverse();
    assert_eq!(facts_of(&reversed), expected);
    // A rotation plus every delivery twice.
    let mut twice: Vec<LogRecord> = records[5..].iter().chain(&records[..5]).cloned().collect();
    twice.extend(records.iter().cloned());
    assert_eq!(facts_of(&twice), expected);
}

#[test]
fn duplicates_are_counted_per_service() {
    let mut engine = engine();
    let r = record("p1", push("0000", "c1", &[("c1", t(1, 8), "x")]));
    engine.apply(&r);
    engine.apply(&r);
    engine.apply(&r);
    assert_eq!(engine.state().duplicates_total, 2);
    assert_eq!(engine.state().duplicates.get("app"), Some(&2));
}

#[test]
fn an_unknown_revision_links_late_when_its_push_arrives() {
    let deployment = record("d1", deploy("1", "c9", "production", Success, t(5, 10)));
    let early = facts_of(std::slice::from_ref(&deployment));
    assert!(!early.deployments[0].linked);
    let later = facts_of(&[
        deployment,
        record("p", push("0000", "c9", &[("c9", t(5, 9), "x")])),
    ]);
    assert!(later.deployments[0].linked);
    assert_eq!(later.deployments[0].changes, 1);
}

#[test]
fn incidents_follow_revisions_named_in_the_title_then_the_window() {
    let mut records = vec![
        record(
            "p",
            push(
                "0000",
                "aaaaaaa1",
                &[("aaaaaaa1", t(1, 8), "x"), ("bbbbbbb2", t(1, 9), "y")],
            ),
        ),
        record(
            "d1",
            deploy("1", "aaaaaaa1", "production", Success, t(1, 10)),
        ),
        record(
            "d2",
            deploy("2", "bbbbbbb2", "production", Success, t(2, 10)),
        ),
    ];
    // Names the first deployment's revision although the second is more recent.
    records.push(record(
        "i",
        incident(
            "I1",
            IncidentChange::Triggered,
            t(2, 11),
            "errors since aaaaaaa deploy",
        ),
    ));
    // Opens more than 24 h after the latest deployment: unattributed.
    records.push(record(
        "j",
        incident("I2", IncidentChange::Triggered, t(4, 11), "latency"),
    ));
    let facts = facts_of(&records);
    let i = |id: &str| {
        facts
            .incidents
            .iter()
            .find(|i| i.id == format!("github:{id}"))
            .unwrap()
    };
    assert_eq!(i("I1").attributed_to.as_deref(), Some("github:1"));
    assert_eq!(i("I2").attributed_to, None);
}

#[test]
fn a_reopened_incident_is_unresolved_until_resolved_again() {
    let mut records = vec![
        record("p", push("0000", "c1", &[("c1", t(1, 8), "x")])),
        record("d1", deploy("1", "c1", "production", Success, t(1, 10))),
        record(
            "a",
            incident("I1", IncidentChange::Triggered, t(1, 11), "down"),
        ),
        record(
            "b",
            incident("I1", IncidentChange::Resolved, t(1, 12), "down"),
        ),
        record(
            "c",
            incident("I1", IncidentChange::Reopened, t(1, 13), "down"),
        ),
    ];
    let open = facts_of(&records);
    assert_eq!(open.incidents[0].resolved_at, None);
    assert_eq!(open.deployments[0].recovered_at, None);
    records.push(record(
        "d",
        incident("I1", IncidentChange::Resolved, t(1, 16), "down"),
    ));
    let closed = facts_of(&records);
    assert_eq!(closed.incidents[0].resolved_at, Some(t(1, 16)));
    assert_eq!(closed.deployments[0].recovered_at, Some(t(1, 16)));
}

#[test]
fn a_fix_forward_is_rework_and_labelled_merges_are_fixes() {
    let records = vec![
        record("p1", push("0000", "c1", &[("c1", t(1, 8), "feat")])),
        record(
            "p2",
            push("c1", "c2", &[("c2", t(1, 12), "Merge pull request #7")]),
        ),
        record(
            "pr",
            Event::PullRequestMerged(PullRequestMerged {
                repo: "acme/app".into(),
                number: 7,
                merge_commit_sha: "c2".into(),
                merged_at: t(1, 12),
                labels: vec!["HotFix".into()],
            }),
        ),
        record("d1", deploy("1", "c1", "production", Success, t(1, 10))),
        record(
            "i",
            incident("I1", IncidentChange::Triggered, t(1, 11), "down"),
        ),
        record("d2", deploy("2", "c2", "production", Success, t(1, 13))),
        record(
            "r",
            incident("I1", IncidentChange::Resolved, t(1, 14), "down"),
        ),
    ];
    let facts = facts_of(&records);
    let d2 = facts
        .deployments
        .iter()
        .find(|d| &*d.id == "github:2")
        .unwrap();
    assert!(d2.rework);
    assert!(
        facts
            .changes
            .iter()
            .find(|c| *c.sha() == *"c2")
            .unwrap()
            .fix
    );
}

#[test]
fn negative_lead_times_are_zero_and_flagged() {
    let facts = facts_of(&[
        record("p", push("0000", "c1", &[("c1", t(2, 8), "x")])),
        record("d", deploy("1", "c1", "production", Success, t(1, 10))),
    ]);
    assert_eq!(facts.changes[0].lead_time(), Some(0.0));
    assert!(facts.changes[0].clock_skew());
}

#[test]
fn the_state_survives_a_checkpoint_round_trip() {
    let mut engine = engine();
    for r in scenario() {
        engine.apply(&r);
    }
    let json = serde_json::to_vec(engine.state()).unwrap();
    let restored: EngineState = serde_json::from_slice(&json).unwrap();
    let catalog = engine.catalog().clone();
    let again = Engine::new(restored, catalog, Definitions::default());
    assert_eq!(again.derive("app"), engine.derive("app"));
    assert_eq!(again.state().inputs.seen, engine.state().inputs.seen);
}

#[test]
fn a_forced_push_drops_undeployed_changes_it_does_not_carry_again() {
    let mut forced = push(
        "c3",
        "c4",
        &[("c3b", t(2, 9), "rewritten"), ("c4", t(2, 10), "x")],
    );
    if let Event::Push(p) = &mut forced {
        p.forced = true;
        p.pushed_at = t(2, 11);
    }
    let records = vec![
        record("p1", push("0000", "c1", &[("c1", t(1, 8), "a")])),
        record("d1", deploy("1", "c1", "production", Success, t(1, 10))),
        // c2 and c3 are pushed but never deployed before the forced push rewrites them.
        record(
            "p2",
            push("c1", "c3", &[("c2", t(1, 12), "b"), ("c3", t(1, 13), "c")]),
        ),
        record("p3", forced),
        record("d2", deploy("2", "c4", "production", Success, t(2, 12))),
    ];
    let facts = facts_of(&records);
    let c = |sha: &str| facts.changes.iter().find(|c| *c.sha() == *sha).unwrap();
    assert_eq!(c("c1").dropped_at, None, "deployed before the forced push");
    assert_eq!(c("c2").dropped_at, Some(t(2, 11)));
    assert_eq!(c("c3").dropped_at, Some(t(2, 11)));
    assert_eq!(c("c2").deployed_by, None);
    assert_eq!(c("c4").deployed_by.as_deref(), Some("github:2"));
    let d2 = facts
        .deployments
        .iter()
        .find(|d| &*d.id == "github:2")
        .unwrap();
    assert_eq!(d2.changes, 2, "c3b and c4, not the dropped c2 and c3");
    // The same deliveries in another order give the same facts.
    let mut reversed = records.clone();
    reversed.reverse();
    assert_eq!(facts_of(&reversed), facts);
}

/// A deployment that names an application (Argo CD, Flux, CDEvents) instead of a repository.
fn app_deploy(kind: AppKind, name: &str, label: &str, id: &str, sha: &str, at: Timestamp) -> Event {
    Event::Deployment(DeploymentUpdate {
        id: id.into(),
        repo: None,
        service_hint: None,
        environment: label.into(),
        revision: sha.into(),
        state: Success,
        at,
        tier: None,
        app: Some(AppRef {
            kind,
            name: name.into(),
        }),
    })
}

#[test]
fn applications_map_through_the_catalog_with_their_pinned_environment() {
    let catalog = Catalog::new(&[ServiceConfig {
        name: "app".into(),
        repos: vec![doraflow_schemas::config::RepoMapping {
            repo: "acme/app".into(),
            paths: vec![],
        }],
        argocd_apps: vec![ArgoApp {
            app: "app-eu".into(),
            environment: Some("production-eu".into()),
        }],
        flux_objects: vec![FluxObject {
            object: "apps/app".into(),
            environment: None,
        }],
        cdevents_services: vec!["app-svc".into()],
        ..Default::default()
    }])
    .unwrap();
    let mut engine = Engine::new(EngineState::default(), catalog, Definitions::default());
    let records = [
        record("p1", push("0000", "c1", &[("c1", t(1, 8), "feat: a")])),
        // The pin wins over the label; the Flux object's label decides; CDEvents names its own.
        record(
            "a1",
            app_deploy(AppKind::Argocd, "app-eu", "staging", "a1", "c1", t(1, 10)),
        ),
        record(
            "f1",
            app_deploy(AppKind::Flux, "apps/app", "staging", "f1", "c1", t(1, 11)),
        ),
        record(
            "e1",
            app_deploy(AppKind::Cdevents, "app-svc", "prod", "e1", "c1", t(1, 12)),
        ),
        // Unknown applications are services of their own name.
        record(
            "a2",
            app_deploy(AppKind::Argocd, "billing", "", "a2", "c9", t(1, 12)),
        ),
    ];
    for r in &records {
        engine.apply(r);
    }
    let facts = engine.derive("app");
    let by_id = |id: &str| {
        facts
            .deployments
            .iter()
            .find(|d| *d.id == format!("github:{id}"))
            .unwrap_or_else(|| panic!("{id} in {:?}", facts.deployments))
    };
    assert_eq!(
        (&*by_id("a1").environment, by_id("a1").production),
        ("production-eu", true)
    );
    assert_eq!(
        (&*by_id("f1").environment, by_id("f1").production),
        ("staging", false)
    );
    assert_eq!(
        (&*by_id("e1").environment, by_id("e1").production),
        ("prod", true)
    );
    // The first production deployment of c1 deploys it; the next one redeploys it.
    assert!(by_id("a1").linked);
    assert_eq!(facts.changes[0].deployed_by.as_deref(), Some("github:a1"));
    let billing = engine.derive("billing");
    assert_eq!(billing.deployments.len(), 1);
    assert_eq!(&*billing.deployments[0].environment, "production");
    assert!(billing.deployments[0].production);
    // An unmapped Flux object is the service of its name, whatever its namespace.
    engine.apply(&record(
        "f2",
        app_deploy(AppKind::Flux, "prod-eu/search", "", "f2", "c9", t(1, 13)),
    ));
    assert_eq!(engine.derive("search").deployments.len(), 1);
}

#[test]
fn a_stated_tier_decides_over_the_environment_name() {
    let mut engine = engine();
    for (id, env, tier) in [
        ("1", "eu-live", Some(Tier::Production)),
        ("2", "production", Some(Tier::Staging)),
        ("3", "production", None),
    ] {
        let Event::Deployment(mut d) = deploy(id, "c1", env, Success, t(1, 10)) else {
            unreachable!()
        };
        d.tier = tier;
        engine.apply(&record(id, Event::Deployment(d)));
    }
    let facts = engine.derive("app");
    let production: Vec<(&str, bool)> = facts
        .deployments
        .iter()
        .map(|d| (&*d.id, d.production))
        .collect();
    assert_eq!(
        production,
        vec![("github:1", true), ("github:2", false), ("github:3", true)]
    );
}

#[test]
fn commits_a_push_does_not_list_are_counted_once() {
    let mut engine = engine();
    let Event::Push(mut p) = push("0000", "c2", &[("c2", t(1, 8), "feat: a")]) else {
        unreachable!()
    };
    p.commits_not_listed = 18;
    let r = record("p1", Event::Push(p));
    engine.apply(&r);
    engine.apply(&r);
    assert_eq!(engine.state().commits_not_listed.get("app"), Some(&18));
}
