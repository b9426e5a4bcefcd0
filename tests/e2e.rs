//! End-to-end tests of the `doraflow` binary: a month of signed GitHub and PagerDuty deliveries for
//! three services in two teams, with duplicates and in shuffled order, checked field by field
//! against figures worked out independently; authentication and team scoping; crash safety under
//! `kill -9`; and 503 when the data directory cannot be written.

mod support;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use support::scenario::{self, DAYS};
use support::{Server, api_shape, mismatches, send_all};

fn window() -> (DateTime<Utc>, DateTime<Utc>) {
    (
        scenario::start(),
        scenario::start() + chrono::Duration::days(DAYS),
    )
}

fn query(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let f = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!("from={}&to={}", f(from), f(to))
}

/// Compares every scope against the model; `skip` names data-quality counters not to compare.
fn check_all_scopes(
    server: &Server,
    token: Option<&str>,
    month: &scenario::Scenario,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    skip: &[&str],
) {
    let q = query(from, to);
    let scopes: Vec<(String, Vec<&str>)> = vec![
        ("service=checkout".into(), vec!["checkout"]),
        ("service=billing".into(), vec!["billing"]),
        ("service=search".into(), vec!["search"]),
        ("team=payments".into(), vec!["checkout", "billing"]),
        ("team=discovery".into(), vec!["search"]),
        (String::new(), vec!["checkout", "billing", "search"]),
    ];
    let mut problems = Vec::new();
    for (scope, services) in scopes {
        let (status, answer) = server.get(&format!("/api/v1/dora?{scope}&{q}"), token);
        assert_eq!(status, 200, "{scope}: {answer}");
        let mut expected = api_shape(scenario::expected(&month.model, &services, from, to));
        for key in skip {
            expected["data_quality"]
                .as_object_mut()
                .unwrap()
                .remove(*key);
        }
        mismatches(&format!("[{scope}]"), &answer, &expected, &mut problems);
        assert_eq!(answer["definitions_version"], "1");
        assert_eq!(answer["benchmark"]["edition"], "dora-2025");
    }
    assert!(problems.is_empty(), "mismatches:\n{}", problems.join("\n"));
}

#[test]
fn a_month_of_deliveries_gives_the_worked_out_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), |listen| scenario::config_toml(listen, ""));
    let month = scenario::month(7);
    let statuses = send_all(&server.base, &month.deliveries, 8);
    assert!(
        statuses.iter().all(|s| *s == 202),
        "not all 202: {:?}",
        statuses.iter().filter(|s| **s != 202).collect::<Vec<_>>()
    );

    let (from, to) = window();
    server.wait_caught_up();
    check_all_scopes(&server, None, &month, from, to, &["late_corrections"]);

    // A window cut mid-month: [from, to) boundaries, recoveries and restores by their own times.
    let mid = from + chrono::Duration::days(11) + chrono::Duration::hours(14);
    check_all_scopes(&server, None, &month, mid, to, &["late_corrections"]);
    check_all_scopes(&server, None, &month, from, mid, &["late_corrections"]);

    // The scenario's month has real variety: failures of both kinds, rework, failed attempts.
    let (_, org) = server.get(&format!("/api/v1/dora?{}", query(from, to)), None);
    assert!(
        org["change_failure_rate"]["failed"].as_u64().unwrap() >= 4,
        "{org}"
    );
    assert!(org["rework_rate"]["rework"].as_u64().unwrap() >= 2, "{org}");
    assert!(
        org["deployment_frequency"]["failed_attempts"]
            .as_u64()
            .unwrap()
            >= 1,
        "{org}"
    );
    assert!(
        org["data_quality"]["duplicates_ignored"].as_u64().unwrap() > 0,
        "{org}"
    );
    assert!(org["benchmark"]["overall"].as_f64().is_some(), "{org}");
}

#[test]
fn the_same_month_from_every_source_with_a_backstage_catalog_gives_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("catalog");
    scenario::write_backstage(&catalog);
    let server = Server::start(dir.path(), |listen| {
        scenario::config_toml_mixed(listen, &catalog)
    });
    let month = scenario::month_from(7, scenario::Sources::Mixed);
    let endpoints: std::collections::BTreeSet<&str> =
        month.deliveries.iter().map(|d| d.endpoint).collect();
    assert_eq!(endpoints.len(), 6, "{endpoints:?}");
    let statuses = send_all(&server.base, &month.deliveries, 8);
    let refused: Vec<(u16, &str)> = statuses
        .iter()
        .zip(&month.deliveries)
        .filter(|(s, _)| **s != 202)
        .map(|(s, d)| (*s, d.body.as_str()))
        .take(3)
        .collect();
    assert!(refused.is_empty(), "not all 202: {refused:?}");
    server.wait_caught_up();

    // The model is the one the GitHub and PagerDuty month is checked against. Duplicates differ
    // only because the tools send different numbers of deliveries for the same activity.
    let (from, to) = window();
    let skip = ["late_corrections", "duplicates_ignored"];
    check_all_scopes(&server, None, &month, from, to, &skip);
    let mid = from + chrono::Duration::days(11) + chrono::Duration::hours(14);
    check_all_scopes(&server, None, &month, mid, to, &skip);
    check_all_scopes(&server, None, &month, from, mid, &skip);
    let (_, services) = server.get("/api/v1/services", None);
    assert!(services.to_string().contains("payments"), "{services}");
}

#[test]
fn tokens_authenticate_and_scope_to_teams() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = r#"{ token = "t-admin" }, { token = "t-pay", teams = ["payments"] }"#;
    let server = Server::start(dir.path(), |listen| scenario::config_toml(listen, tokens));
    assert_eq!(server.get("/api/v1/dora", None).0, 401);
    assert_eq!(server.get("/api/v1/dora", Some("wrong")).0, 401);
    assert_eq!(server.get("/api/v1/dora", Some("t-admin")).0, 200);
    assert_eq!(
        server.get("/api/v1/dora?service=checkout", Some("t-pay")).0,
        200
    );
    assert_eq!(
        server.get("/api/v1/dora?team=payments", Some("t-pay")).0,
        200
    );
    assert_eq!(
        server.get("/api/v1/dora?service=search", Some("t-pay")).0,
        403
    );
    assert_eq!(
        server.get("/api/v1/dora?team=discovery", Some("t-pay")).0,
        403
    );
    assert_eq!(server.get("/api/v1/dora", Some("t-pay")).0, 403);
    let (status, body) = server.get("/api/v1/dora?from=nonsense", Some("t-admin"));
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_parameter");
    // Health needs no token.
    assert_eq!(server.get("/healthz", None).0, 200);
    assert_eq!(server.get("/readyz", None).0, 200);
}

#[test]
fn kill_9_while_deliveries_arrive_loses_nothing_acknowledged_and_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();

    let mut server = Server::start(dir.path(), |listen| scenario::config_toml(listen, ""));
    let month = scenario::month(11);
    let base = server.base.clone();
    let deliveries = month.deliveries.clone();
    // Send in the background and kill the server while they arrive.
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    let sender =
        std::thread::spawn(move || support::send_all_counting(&base, &deliveries, 4, &counter));
    let deadline = Instant::now() + Duration::from_secs(30);
    while accepted.load(std::sync::atomic::Ordering::Relaxed) < month.deliveries.len() / 3
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    server.kill9();
    let statuses = sender.join().unwrap();
    let acknowledged = statuses.iter().filter(|s| **s == 202).count();
    assert!(
        acknowledged > 0 && acknowledged < statuses.len(),
        "the kill should land mid-stream: {acknowledged} of {}",
        statuses.len()
    );

    // Restart; the senders redeliver what got no 202, as GitHub and PagerDuty do.
    server.spawn();
    let unanswered: Vec<_> = month
        .deliveries
        .iter()
        .zip(&statuses)
        .filter(|(_, s)| **s != 202)
        .map(|(d, _)| d.clone())
        .collect();
    let retried = send_all(&server.base, &unanswered, 4);

    assert!(retried.iter().all(|s| *s == 202));

    let (from, to) = window();
    let expected = scenario::expected(&month.model, &["checkout", "billing", "search"], from, to);
    server.wait_caught_up();
    // A delivery written just before the kill but never answered is redelivered and then counts
    // as a duplicate, so duplicates may exceed the model's; everything else must be exact.
    check_all_scopes(
        &server,
        None,
        &month,
        from,
        to,
        &["late_corrections", "duplicates_ignored"],
    );
    let (_, org) = server.get(&format!("/api/v1/dora?{}", query(from, to)), None);
    let (got, want) = (
        &org["data_quality"]["duplicates_ignored"],
        &expected["data_quality"]["duplicates_ignored"],
    );
    assert!(
        got.as_u64().unwrap() >= want.as_u64().unwrap(),
        "duplicates {got} < {want}; log:\n{}",
        server.log()
    );

    // A graceful restart keeps the numbers too (checkpoint, then replay of the tail).
    server.stop();
    server.spawn();
    server.wait_caught_up();
    check_all_scopes(
        &server,
        None,
        &month,
        from,
        to,
        &["late_corrections", "duplicates_ignored"],
    );
}

#[test]
fn an_unwritable_data_dir_gets_503_and_nothing_is_acknowledged() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), |listen| scenario::config_toml(listen, ""));
    let month = scenario::month(3);
    let client = reqwest::blocking::Client::new();
    assert_eq!(
        support::send_one(&client, &server.base, &month.deliveries[0]),
        202
    );

    let log_dir = dir.path().join("data/log");
    std::fs::set_permissions(&log_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    for d in &month.deliveries[1..4] {
        assert_eq!(support::send_one(&client, &server.base, d), 503);
    }
    assert_eq!(server.get("/readyz", None).0, 503);
    std::fs::set_permissions(&log_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        support::send_one(&client, &server.base, &month.deliveries[1]),
        202
    );
    assert_eq!(server.get("/readyz", None).0, 200);
}

#[test]
fn series_and_drill_downs_agree_with_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), |listen| scenario::config_toml(listen, ""));
    let month = scenario::month(5);
    assert!(
        send_all(&server.base, &month.deliveries, 8)
            .iter()
            .all(|s| *s == 202)
    );
    server.wait_caught_up();
    let (from, to) = window();
    let q = query(from, to);
    let (_, summary) = server.get(&format!("/api/v1/dora?team=payments&{q}"), None);
    let deployments = summary["deployment_frequency"]["deployments"]
        .as_u64()
        .unwrap();

    // Daily series: one point per day, counts adding up to the window's figures.
    let (status, series) = server.get(
        &format!("/api/v1/dora/series?metric=deployment_frequency&bucket=day&team=payments&{q}"),
        None,
    );
    assert_eq!(status, 200, "{series}");
    let points = series["points"].as_array().unwrap();
    assert_eq!(points.len(), DAYS as usize);
    assert_eq!(
        points
            .iter()
            .map(|p| p["count"].as_u64().unwrap())
            .sum::<u64>(),
        deployments
    );
    let (_, leads) = server.get(
        &format!("/api/v1/dora/series?metric=lead_time&bucket=week&stat=p90&team=payments&{q}"),
        None,
    );
    let lead_count: u64 = leads["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["count"].as_u64().unwrap())
        .sum();
    assert_eq!(lead_count, summary["lead_time"]["count"].as_u64().unwrap());
    assert_eq!(
        server
            .get(&format!("/api/v1/dora/series?metric=nonsense&{q}"), None)
            .0,
        400
    );

    // Deployments, paged by 7: every production attempt exactly once, newest first.
    let mut seen = Vec::new();
    let mut path = format!("/api/v1/deployments?team=payments&limit=7&{q}");
    loop {
        let (status, page) = server.get(&path, None);
        assert_eq!(status, 200, "{page}");
        seen.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => path = next.to_string(),
            None => break,
        }
    }
    let succeeded: Vec<_> = seen.iter().filter(|d| d["succeeded"] == true).collect();
    assert_eq!(succeeded.len() as u64, deployments);
    assert_eq!(
        seen.len() as u64 - deployments,
        summary["deployment_frequency"]["failed_attempts"]
            .as_u64()
            .unwrap()
    );
    let ids: std::collections::BTreeSet<_> = seen
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), seen.len(), "no deployment twice across pages");
    let times: Vec<_> = seen
        .iter()
        .map(|d| d["finished_at"].as_str().unwrap().to_string())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let failed = succeeded.iter().filter(|d| d["failed"] == true).count() as u64;
    assert_eq!(
        failed,
        summary["change_failure_rate"]["failed"].as_u64().unwrap()
    );
    assert!(
        succeeded
            .iter()
            .filter(|d| d["failed"] == true)
            .all(|d| !d["failure_reasons"].as_array().unwrap().is_empty())
    );

    // Changes name the deployment that shipped them; incidents the deployment they are blamed on.
    let (_, changes) = server.get(
        &format!("/api/v1/changes?service=checkout&limit=1000&{q}"),
        None,
    );
    let items = changes["items"].as_array().unwrap();
    assert!(!items.is_empty());
    let shipped_ids: std::collections::BTreeSet<_> =
        seen.iter().map(|d| d["id"].as_str().unwrap()).collect();
    for c in items.iter().filter(|c| !c["deployed_by"].is_null()) {
        assert!(c["lead_time"].as_f64().unwrap() >= 0.0);
        assert!(
            shipped_ids.contains(c["deployed_by"].as_str().unwrap()) || c["service"] != "checkout",
            "{c}"
        );
    }
    let (_, incidents) = server.get(&format!("/api/v1/incidents?team=payments&{q}"), None);
    let attributed = incidents["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| !i["attributed_to"].is_null())
        .count();
    let opened = incidents["items"].as_array().unwrap().len();
    let share = summary["data_quality"]["incidents_attributed"]
        .as_f64()
        .unwrap();
    assert!((attributed as f64 / opened as f64 - share).abs() < 1e-9);
    assert_eq!(
        server
            .get(&format!("/api/v1/deployments?cursor=zz&{q}"), None)
            .0,
        400
    );
}
