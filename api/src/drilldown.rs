//! Drill-down pages: `/api/v1/deployments`, `/api/v1/changes`, `/api/v1/incidents`. Newest first,
//! `limit` items (default 100, at most 1000) and an opaque `cursor` to the next page, given also as
//! a ready `next` link. Paging is by key (time, id), so new data does not shift pages.

use std::collections::BTreeMap;
use std::sync::Arc;

use doraflow_aggregator::ServiceFacts;
use doraflow_aggregator::summary::{DEFINITIONS_VERSION, Query};
use doraflow_http::HttpError;
use doraflow_schemas::fact::FailureReason;
use doraflow_schemas::sha::ShaText;
use doraflow_schemas::time::Timestamp;
use doraflow_schemas::{ChangeFact, DeploymentFact, IncidentFact};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Default and largest page sizes.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// Which facts a page lists.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Deployment attempts finished in the window (production tier unless `environment` names one).
    Deployments,
    /// Changes committed in the window, with the deployment that shipped each.
    Changes,
    /// Incidents opened in the window, with the deployment each is attributed to.
    Incidents,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Deployments => "/api/v1/deployments",
            Kind::Changes => "/api/v1/changes",
            Kind::Incidents => "/api/v1/incidents",
        }
    }
}

fn time(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A row's place in the newest-first order: time, then id (for changes, SHA then repository; a
/// SHA's text is written out on the stack, [`ShaText`]).
type Key<'a> = (i64, ShaText<'a>, &'a str);

fn encode_cursor(key: Key) -> String {
    hex_encode(format!("{}|{}|{}", key.0, key.1, key.2).as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<(i64, String, String), HttpError> {
    let bad = || HttpError::bad_request("invalid_parameter", "cursor: not a cursor of this API");
    let bytes = hex_decode(cursor).ok_or_else(bad)?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut parts = text.splitn(3, '|');
    let millis = parts.next().and_then(|m| m.parse().ok()).ok_or_else(bad)?;
    let id = parts.next().ok_or_else(bad)?.to_string();
    let second = parts.next().ok_or_else(bad)?.to_string();
    Ok((millis, id, second))
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A fact a page may list.
#[derive(Clone, Copy)]
enum Fact<'a> {
    Deployment(&'a DeploymentFact),
    Change(&'a ChangeFact),
    Incident(&'a IncidentFact),
}

impl<'a> Fact<'a> {
    fn key(self) -> Key<'a> {
        match self {
            Fact::Deployment(d) => (self.millis(), ShaText::Text(&d.id), ""),
            Fact::Change(c) => (self.millis(), c.sha().text(), &c.repo),
            Fact::Incident(i) => (self.millis(), ShaText::Text(&i.id), ""),
        }
    }

    /// Its place after `other` in the newest-first order: by time, then (only for the same time,
    /// so a change's SHA is written out only then) by the rest of the key.
    fn newest_first(self, other: Self) -> std::cmp::Ordering {
        other
            .millis()
            .cmp(&self.millis())
            .then_with(|| other.key().cmp(&self.key()))
    }

    /// The time of its key, alone (a change's SHA is not written out for it).
    fn millis(self) -> i64 {
        match self {
            Fact::Deployment(d) => d.finished_at.timestamp_millis(),
            Fact::Change(c) => c.timestamp.timestamp_millis(),
            Fact::Incident(i) => i.opened_at.timestamp_millis(),
        }
    }

    fn json(self) -> Value {
        let row = match self {
            Fact::Deployment(d) => serde_json::to_value(DeploymentRow::from(d)),
            Fact::Change(c) => serde_json::to_value(ChangeRow::from(c)),
            Fact::Incident(i) => serde_json::to_value(IncidentRow::from(i)),
        };
        row.expect("rows serialize")
    }
}

/// A deployment attempt as `/api/v1/deployments` lists it.
#[derive(Serialize, ToSchema)]
pub struct DeploymentRow<'a> {
    /// Source-given id.
    pub id: &'a str,
    /// Canonical service; null for a deployment no catalog service claims.
    pub service: Option<&'a str>,
    /// Environment name.
    pub environment: &'a str,
    /// Whether the environment is of the production tier.
    pub production: bool,
    /// Revision deployed.
    pub revision: &'a str,
    /// When the attempt finished.
    #[schema(format = DateTime, value_type = String)]
    pub finished_at: String,
    /// Whether the attempt succeeded (a failed attempt is not a deployment, metrics.md §1).
    pub succeeded: bool,
    /// Whether the revision is a known change.
    pub linked: bool,
    /// Changes this deployment shipped first.
    pub changes: u32,
    /// Median lead time of those changes, seconds.
    pub lead_time_p50: Option<f64>,
    /// Whether it rolled back to an earlier revision.
    pub rollback: bool,
    /// Whether it is a change failure.
    pub failed: bool,
    /// Why it failed.
    pub failure_reasons: &'a [FailureReason],
    /// Incidents attributed to it.
    pub incidents: &'a [String],
    /// The deployment that rolled it back.
    pub rolled_back_by: Option<&'a str>,
    /// When its failure was first detected.
    #[schema(format = DateTime, value_type = Option<String>)]
    pub detected_at: Option<String>,
    /// When it recovered.
    #[schema(format = DateTime, value_type = Option<String>)]
    pub recovered_at: Option<String>,
    /// Failed deployment recovery time, seconds.
    pub recovery_time: Option<f64>,
    /// Whether it is rework (metrics.md §5).
    pub rework: bool,
}

impl<'a> From<&'a DeploymentFact> for DeploymentRow<'a> {
    fn from(d: &'a DeploymentFact) -> Self {
        Self {
            id: &d.id,
            service: d.service.as_deref(),
            environment: &d.environment,
            production: d.production,
            revision: &d.revision,
            finished_at: time(d.finished_at),
            succeeded: d.succeeded,
            linked: d.linked,
            changes: d.changes,
            lead_time_p50: d.lead_time_p50,
            rollback: d.rollback,
            failed: d.failed(),
            failure_reasons: &d.failure_reasons,
            incidents: &d.incidents,
            rolled_back_by: d.rolled_back_by.as_deref(),
            detected_at: d.detected_at.map(time),
            recovered_at: d.recovered_at.map(time),
            recovery_time: d.recovery_secs(),
            rework: d.rework,
        }
    }
}

/// A change as `/api/v1/changes` lists it, with the deployment that shipped it.
#[derive(Serialize, ToSchema)]
pub struct ChangeRow<'a> {
    /// Commit SHA.
    #[schema(value_type = String)]
    pub sha: ShaText<'a>,
    /// Repository.
    pub repo: &'a str,
    /// Canonical service.
    pub service: &'a str,
    /// Commit time.
    #[schema(format = DateTime, value_type = String)]
    pub timestamp: String,
    /// Commit title.
    pub title: &'a str,
    /// Position on its branch's history.
    pub position: u64,
    /// The production deployment that shipped it first.
    pub deployed_by: Option<&'a str>,
    /// That deployment's environment.
    pub environment: Option<&'a str>,
    /// When it was deployed.
    #[schema(format = DateTime, value_type = Option<String>)]
    pub deployed_at: Option<String>,
    /// Lead time for the change, seconds.
    pub lead_time: Option<f64>,
    /// Whether its commit time was after its deployment (clock skew, metrics.md §2).
    pub clock_skew: bool,
    /// Whether it is a hotfix (metrics.md §5).
    pub fix: bool,
}

impl<'a> From<&'a ChangeFact> for ChangeRow<'a> {
    fn from(c: &'a ChangeFact) -> Self {
        Self {
            sha: c.sha().text(),
            repo: &c.repo,
            service: &c.service,
            timestamp: time(c.timestamp),
            title: c.title(),
            position: c.position,
            deployed_by: c.deployed_by.as_deref(),
            environment: c.environment.as_deref(),
            deployed_at: c.deployed_at.map(time),
            lead_time: c.lead_time(),
            clock_skew: c.clock_skew(),
            fix: c.fix,
        }
    }
}

/// An incident as `/api/v1/incidents` lists it, with the deployment it is attributed to.
#[derive(Serialize, ToSchema)]
pub struct IncidentRow<'a> {
    /// Source-given id.
    pub id: &'a str,
    /// Canonical service.
    pub service: &'a str,
    /// Title.
    pub title: &'a str,
    /// When it was opened.
    #[schema(format = DateTime, value_type = String)]
    pub opened_at: String,
    /// When it was resolved; null while open.
    #[schema(format = DateTime, value_type = Option<String>)]
    pub resolved_at: Option<String>,
    /// Time to restore, seconds.
    pub time_to_restore: Option<f64>,
    /// The deployment it is attributed to.
    pub attributed_to: Option<&'a str>,
}

impl<'a> From<&'a IncidentFact> for IncidentRow<'a> {
    fn from(i: &'a IncidentFact) -> Self {
        Self {
            id: &i.id,
            service: &i.service,
            title: &i.title,
            opened_at: time(i.opened_at),
            resolved_at: i.resolved_at.map(time),
            time_to_restore: i.restore_secs(),
            attributed_to: i.attributed_to.as_deref(),
        }
    }
}

/// One drill-down page.
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    /// Version of the metric definitions.
    pub definitions_version: &'static str,
    /// Newest first.
    pub items: Vec<T>,
    /// The cursor of the next page; null on the last.
    pub next_cursor: Option<String>,
    /// The next page's path and query; null on the last.
    pub next: Option<String>,
}

/// Offers the rows of a time-ordered list with times in `[from, end)`, newest first, until
/// `keep` were taken and the next is older than the last taken.
fn newest_of<'a, T>(
    rows: &'a [T],
    at: impl Fn(&T) -> Timestamp,
    from: i64,
    end: i64,
    keep: usize,
    mut offer: impl FnMut(&'a T) -> bool,
) {
    let stop = rows.partition_point(|r| at(r).timestamp_millis() < end);
    let mut taken = 0;
    let mut last = i64::MAX;
    for row in rows[..stop].iter().rev() {
        let t = at(row).timestamp_millis();
        if t < from || (taken >= keep && t < last) {
            break;
        }
        if offer(row) {
            taken += 1;
            last = t;
        }
    }
}

/// Keeps the `keep` newest of the collected facts (newest first, sorted once at the end).
fn trim(rows: &mut Vec<Fact>, keep: usize) {
    if rows.len() > keep {
        rows.select_nth_unstable_by(keep - 1, |a, b| a.newest_first(*b));
        rows.truncate(keep);
    }
}

/// The newest `keep` facts of one kind in the scope and window, older than the cursor, newest
/// first. One pass over the facts with a bounded buffer: no row is built for facts not shown.
fn newest<'a>(
    kind: Kind,
    facts: &'a [Arc<ServiceFacts>],
    query: &Query,
    before: Option<Key>,
    keep: usize,
) -> Vec<Fact<'a>> {
    let (from, to) = (query.from.timestamp_millis(), query.to.timestamp_millis());
    let mut rows: Vec<Fact> = Vec::with_capacity(4 * keep);
    let mut offer = |fact: Fact<'a>| {
        let millis = fact.millis();
        // At or after the cursor (the whole key compared only at the cursor's time).
        let seen = |b: Key| millis > b.0 || (millis == b.0 && fact.key() >= b);
        if millis < from || millis >= to || before.is_some_and(seen) {
            return false;
        }
        rows.push(fact);
        if rows.len() >= 4 * keep {
            trim(&mut rows, keep);
        }
        true
    };
    // Each list is in time order: read it from the end of the window backwards, and stop once
    // it gave `keep` rows (and their ties), which is all it can contribute.
    let end = before.map_or(to, |b| (b.0 + 1).min(to));
    for f in facts {
        match kind {
            Kind::Deployments => newest_of(
                &f.deployments,
                |d| d.finished_at,
                from,
                end,
                keep,
                |d| {
                    let env_ok = match &query.environment {
                        Some(e) => *d.environment == **e,
                        None => d.production,
                    };
                    env_ok && offer(Fact::Deployment(d))
                },
            ),
            Kind::Changes => newest_of(
                &f.changes,
                |c| c.timestamp,
                from,
                end,
                keep,
                |c| {
                    let env_ok = match &query.environment {
                        Some(e) => c.environment.as_deref().is_none_or(|env| env == e),
                        None => true,
                    };
                    env_ok && offer(Fact::Change(c))
                },
            ),
            Kind::Incidents => newest_of(
                &f.incidents,
                |i| i.opened_at,
                from,
                end,
                keep,
                |i| offer(Fact::Incident(i)),
            ),
        }
    }
    trim(&mut rows, keep);
    rows.sort_by(|a, b| a.newest_first(*b));
    rows
}

/// One page of a drill-down.
pub fn page(
    kind: Kind,
    facts: &[Arc<ServiceFacts>],
    query: &Query,
    raw_params: &BTreeMap<String, String>,
) -> Result<Page<Value>, HttpError> {
    let limit = match raw_params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                HttpError::bad_request(
                    "invalid_parameter",
                    format!("limit: `{text}` is not a number from 1 to {MAX_LIMIT}"),
                )
            })?,
    };
    // An empty cursor (an unset dashboard variable) is the first page.
    let after = raw_params
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(|c| decode_cursor(c))
        .transpose()?;
    let before = after
        .as_ref()
        .map(|(at, id, second)| (*at, ShaText::Text(id), second.as_str()));
    // One more than the page: whether a next page exists.
    let mut items = newest(kind, facts, query, before, limit + 1);
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor = more
        .then(|| items.last().map(|f| encode_cursor(f.key())))
        .flatten();
    let next = next_cursor.as_ref().map(|cursor| {
        let mut params = raw_params.clone();
        params.insert("cursor".into(), cursor.clone());
        format!(
            "{}?{}",
            kind.path(),
            serde_urlencoded::to_string(&params).expect("strings encode")
        )
    });
    Ok(Page {
        definitions_version: DEFINITIONS_VERSION,
        items: items.iter().map(|f| f.json()).collect(),
        next_cursor,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let at = doraflow_schemas::time::parse_rfc3339("2026-11-01T10:00:00Z").unwrap();
        let c = encode_cursor((at.timestamp_millis(), ShaText::Text("github:42"), ""));
        assert_eq!(
            decode_cursor(&c).unwrap(),
            (
                at.timestamp_millis(),
                "github:42".to_string(),
                String::new()
            )
        );
        assert!(decode_cursor("zz").is_err());
        assert!(decode_cursor("abc").is_err());
    }
}

#[cfg(test)]
mod paging {
    use super::*;
    use doraflow_aggregator::summary::Edition;
    use doraflow_schemas::fact::{CommitRecord, CommitRef};
    use doraflow_schemas::time::parse_rfc3339;

    fn change(sha: &str, at: &str) -> ChangeFact {
        let timestamp = parse_rfc3339(at).unwrap();
        ChangeFact {
            service: "app".into(),
            repo: "acme/app".into(),
            commit: CommitRef::single(CommitRecord {
                sha: sha.into(),
                timestamp,
                title: "x".into(),
            }),
            timestamp,
            position: 0,
            deployed_by: None,
            environment: None,
            deployed_at: None,
            dropped_at: None,
            fix: false,
        }
    }

    /// Pages of 7 over two time-ordered parts, most changes sharing one timestamp (a big push),
    /// among them full SHAs (held as their bytes) and other texts: every change exactly once,
    /// newest first.
    #[test]
    fn pages_visit_every_row_once_even_with_ties() {
        let mut old = ServiceFacts::default();
        let mut live = ServiceFacts::default();
        for i in 0..23 {
            let sha = if i % 2 == 0 {
                format!("{:040x}", i * 0x0f0f)
            } else {
                format!("a{i:02}")
            };
            old.changes.push(change(&sha, "2026-03-01T10:00:00Z"));
        }
        for i in 0..9 {
            live.changes
                .push(change(&format!("b{i}"), "2026-03-02T10:00:00Z"));
        }
        live.changes.push(change("c", "2026-03-03T10:00:00Z"));
        old.sort_by_time();
        live.sort_by_time();
        let facts = vec![Arc::new(old), Arc::new(live)];
        let query = Query {
            from: parse_rfc3339("2026-03-01T00:00:00Z").unwrap(),
            to: parse_rfc3339("2026-04-01T00:00:00Z").unwrap(),
            environment: None,
            tz: chrono_tz::Tz::UTC,
            edition: Edition::Dora2025,
        };
        let mut params = BTreeMap::from([("limit".to_string(), "7".to_string())]);
        let mut seen = Vec::new();
        loop {
            let page = page(Kind::Changes, &facts, &query, &params).unwrap();
            for item in &page.items {
                seen.push(item["sha"].as_str().unwrap().to_string());
            }
            match page.next_cursor.as_deref() {
                Some(cursor) => {
                    params.insert("cursor".into(), cursor.into());
                }
                None => break,
            }
        }
        assert_eq!(seen.len(), 33);
        let unique: std::collections::BTreeSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), 33, "{seen:?}");
        assert_eq!(seen[0], "c");
        assert!(seen[1..10].iter().all(|s| s.starts_with('b')));
    }
}
