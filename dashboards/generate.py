#!/usr/bin/env python3
"""Writes the Grafana dashboards of doraflow (dashboards/*.json) on the Infinity data source.

The JSON files are what Grafana provisions and what tests/surface.rs checks panel by panel
against a running doraflow; this script is where they are written from: edit it, run
`python3 dashboards/generate.py`, and commit both."""
import json, os
DS = {"type": "yesoreyeram-infinity-datasource", "uid": "doraflow-api"}
WINDOW = [{"key": "from", "value": "${__from:date:iso}"}, {"key": "to", "value": "${__to:date:iso}"}]

def params(*scope, extra=()):
    p = [{"key": k, "value": "$" + k} for k in scope]
    return p + WINDOW + [{"key": k, "value": v} for k, v in extra]

def target(ref, url, root, columns, scope, extra=(), fmt="table"):
    return {
        "refId": ref, "datasource": DS, "type": "json", "source": "url", "parser": "backend",
        "format": fmt, "url": url, "url_options": {"method": "GET", "data": "", "params": params(*scope, extra=extra)},
        "root_selector": root,
        "columns": [{"selector": s, "text": t, "type": ty} for s, t, ty in columns],
        "filters": [],
    }

class Board:
    def __init__(self, uid, title, description, scope, tags):
        self.uid, self.title, self.description, self.scope, self.tags = uid, title, description, scope, tags
        self.panels, self.next_id, self.y = [], 1, 0

    def add(self, kind, title, targets, w=6, h=6, description="", field=None, options=None):
        panel = {"id": self.next_id, "type": kind, "title": title, "description": description, "datasource": DS,
                 "gridPos": {"x": 0, "y": 0, "w": w, "h": h}, "targets": targets,
                 "fieldConfig": field or {"defaults": {}, "overrides": []}, "options": options or {}}
        self.next_id += 1
        self.panels.append(panel)
        return panel

    def layout(self):
        x, y, row_h = 0, 0, 0
        for p in self.panels:
            w, h = p["gridPos"]["w"], p["gridPos"]["h"]
            if x + w > 24:
                x, y, row_h = 0, y + row_h, 0
            p["gridPos"].update({"x": x, "y": y})
            x += w
            row_h = max(row_h, h)

    def json(self, variables):
        self.layout()
        return {
            "uid": self.uid, "title": self.title, "description": self.description, "tags": ["dora", "doraflow"] + self.tags,
            "schemaVersion": 39, "version": 1, "editable": False, "graphTooltip": 1, "refresh": "1m",
            "time": {"from": "now-30d", "to": "now"}, "timezone": "utc",
            "templating": {"list": variables},
            "annotations": {"list": annotations(self.scope)},
            "links": [{"title": "DORA dashboards", "type": "dashboards", "tags": ["doraflow"], "asDropdown": True}],
            "panels": self.panels,
        }

def query_variable(name, label, url, root, column, all_label, extra=()):
    return {
        "type": "query", "name": name, "label": label, "datasource": DS,
        "query": {"queryType": "infinity", "refId": "variable", "infinityQuery": {
            "refId": "variable", "type": "json", "source": "url", "parser": "backend", "format": "table",
            "url": url, "url_options": {"method": "GET", "data": "", "params": [{"key": k, "value": v} for k, v in extra]},
            "root_selector": root, "columns": [{"selector": column, "text": column, "type": "string"}], "filters": []}},
        "refresh": 2, "includeAll": True, "allValue": "", "multi": False,
        "current": {"text": all_label, "value": "$__all"}, "sort": 1,
    }

TEAM = query_variable("team", "Team", "/api/v1/teams", "teams", "name", "Organisation")
SERVICE = query_variable("service", "Service", "/api/v1/services", "services", "name", "All services")
SERVICE["includeAll"] = False
SERVICE["current"] = {}
ENVIRONMENT = query_variable("environment", "Environment", "/api/v1/deployments", "items", "environment",
                             "Production tier", extra=[("limit", "1000")] + [(w["key"], w["value"]) for w in WINDOW])
BUCKET = {"type": "custom", "name": "bucket", "label": "Bucket", "query": "day,week,month",
          "options": [{"text": b, "value": b, "selected": b == "week"} for b in ["day", "week", "month"]],
          "current": {"text": "week", "value": "week"}, "includeAll": False, "multi": False}

def annotations(scope):
    def ann(name, root, color, enable=True):
        t = target("Anno", "/api/v1/deployments", root,
                   [("finished_at", "time", "timestamp"), ("service", "service", "string"),
                    ("revision", "revision", "string"), ("environment", "environment", "string")],
                   scope, extra=[("limit", "1000")])
        return {"name": name, "datasource": DS, "enable": enable, "iconColor": color, "target": t}
    return [ann("Deployments", "items", "blue"), ann("Failed deployments", "items[failed=true]", "red")]

def stat(board, title, selector, unit, scope, desc, band=None, decimals=None, thresholds=None):
    cols = [(selector, title, "number")]
    if band:
        cols.append((band, "Band", "number"))
    field = {"defaults": {"unit": unit, "decimals": decimals, "color": {"mode": "thresholds"},
                          "thresholds": thresholds or {"mode": "absolute", "steps": [{"color": "blue", "value": None}]}},
             "overrides": [{"matcher": {"id": "byName", "options": "Band"},
                            "properties": [{"id": "unit", "value": "none"}, {"id": "decimals", "value": 0}]}]}
    return board.add("stat", title, [target("A", "/api/v1/dora", "", cols, scope)], w=4, h=5, description=desc,
                     field=field, options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                                           "textMode": "value_and_name", "colorMode": "value", "graphMode": "none"})

METRICS = [
    # (metric, title, unit, dora field, selector, band selector, score key, description)
    ("deployment_frequency", "Deployment frequency", "none", "deployment_frequency.per_day", "deployment_frequency.band", "deployment_frequency",
     "Production deployments per day in the window (metrics.md §6); band 1 (yearly or less) to 6 (on demand)."),
    ("lead_time", "Lead time for changes (p50)", "s", "lead_time.p50", "lead_time.band", "lead_time",
     "Median time from commit to its first production deployment (metrics.md §2)."),
    ("change_failure_rate", "Change failure rate", "percentunit", "change_failure_rate.rate", None, "change_failure_rate",
     "Failed production deployments over production deployments (metrics.md §3)."),
    ("failed_deployment_recovery_time", "Failed deployment recovery time (p50)", "s", "failed_deployment_recovery_time.p50", "failed_deployment_recovery_time.band", "failed_deployment_recovery_time",
     "Median time from a failed deployment to its recovery (metrics.md §4)."),
    ("rework_rate", "Deployment rework rate", "percentunit", "rework_rate.rate", None, "rework_rate",
     "Unplanned deployments that fix a failure over production deployments (metrics.md §5)."),
]

def overview(uid, title, scope, variables, tags, description):
    b = Board(uid, title, description, scope, tags)
    for metric, t, unit, sel, band, score, desc in METRICS:
        stat(b, t, sel, unit, scope, desc, band=band)
    b.add("stat", "DORA score (dora-2025)", [target("A", "/api/v1/dora", "benchmark",
          [("overall", "Overall", "number"), ("throughput", "Throughput", "number"), ("stability", "Stability", "number")], scope)],
          w=4, h=5, description="Mean of the five metric scores (0-10), and of throughput and stability (metrics.md §8).",
          field={"defaults": {"unit": "none", "decimals": 2, "min": 0, "max": 10}, "overrides": []},
          options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "textMode": "value_and_name"})
    b.add("table", "Score against the DORA 2025 reference", [
        target("A", "/api/v1/dora", "benchmark.scores",
               [("lead_time", "Lead time", "number"), ("deployment_frequency", "Deployment frequency", "number"),
                ("failed_deployment_recovery_time", "Recovery time", "number"), ("change_failure_rate", "Change failure rate", "number"),
                ("rework_rate", "Rework rate", "number")], scope),
        target("B", "/api/v1/dora", "benchmark.reference",
               [("lead_time", "Lead time", "number"), ("deployment_frequency", "Deployment frequency", "number"),
                ("failed_deployment_recovery_time", "Recovery time", "number"), ("change_failure_rate", "Change failure rate", "number"),
                ("rework_rate", "Rework rate", "number")], scope)],
        w=12, h=6, description="Row A: this scope's scores; row B: the reference means of the DORA 2025 benchmark.",
        field={"defaults": {"decimals": 2}, "overrides": []})
    b.add("timeseries", "Deployments per week", [target("A", "/api/v1/dora/series", "points",
          [("start", "time", "timestamp"), ("value", "deployments", "number")], scope,
          extra=[("metric", "deployment_frequency"), ("bucket", "week")])], w=12, h=6,
          description="Production deployments per week (empty weeks count 0).",
          field={"defaults": {"custom": {"drawStyle": "bars", "fillOpacity": 60}}, "overrides": []})
    b.add("timeseries", "Lead time p50 per week", [target("A", "/api/v1/dora/series", "points",
          [("start", "time", "timestamp"), ("value", "p50", "number")], scope,
          extra=[("metric", "lead_time"), ("bucket", "week"), ("stat", "p50")])], w=12, h=6,
          field={"defaults": {"unit": "s", "custom": {"spanNulls": True}}, "overrides": []})
    b.add("timeseries", "Change failure rate per week", [target("A", "/api/v1/dora/series", "points",
          [("start", "time", "timestamp"), ("value", "rate", "number")], scope,
          extra=[("metric", "change_failure_rate"), ("bucket", "week")])], w=12, h=6,
          field={"defaults": {"unit": "percentunit", "custom": {"spanNulls": True}}, "overrides": []})
    b.add("table", "Recent deployments", [target("A", "/api/v1/deployments", "items",
          [("finished_at", "Finished", "timestamp"), ("service", "Service", "string"), ("environment", "Environment", "string"),
           ("revision", "Revision", "string"), ("changes", "Changes", "number"), ("lead_time_p50", "Lead time p50", "number"),
           ("failed", "Failed", "boolean")], scope, extra=[("limit", "50")])], w=24, h=8,
          field={"defaults": {}, "overrides": [{"matcher": {"id": "byName", "options": "Lead time p50"}, "properties": [{"id": "unit", "value": "s"}]}]})
    return b.json(variables)

def detail(metric, title, unit, description, duration, distribution):
    scope = ("team", "environment")
    b = Board(f"doraflow-{metric.replace('_', '-')}", f"DORA detail: {title}", description, scope, ["detail"])
    sel = {"deployment_frequency": "deployment_frequency.per_day", "lead_time": "lead_time.p50",
           "change_failure_rate": "change_failure_rate.rate", "failed_deployment_recovery_time": "failed_deployment_recovery_time.p50",
           "time_to_restore": "time_to_restore.p50", "rework_rate": "rework_rate.rate"}[metric]
    stat(b, title, sel, unit, scope, description)
    if duration:
        b.add("stat", "Percentiles and mean", [target("A", "/api/v1/dora", metric,
              [("p50", "p50", "number"), ("p75", "p75", "number"), ("p90", "p90", "number"), ("mean", "mean", "number"), ("count", "count", "number")], scope)],
              w=20, h=5, field={"defaults": {"unit": "s"}, "overrides": [{"matcher": {"id": "byName", "options": "count"}, "properties": [{"id": "unit", "value": "none"}]}]},
              options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "textMode": "value_and_name"})
        targets = [target(chr(65 + i), "/api/v1/dora/series", "points",
                          [("start", "time", "timestamp"), ("value", s, "number")], scope,
                          extra=[("metric", metric), ("bucket", "$bucket"), ("stat", s)])
                   for i, s in enumerate(["p50", "p75", "p90", "mean"])]
        b.add("timeseries", f"{title} per $bucket: p50, p75, p90 and mean", targets, w=24, h=8,
              field={"defaults": {"unit": "s", "custom": {"spanNulls": True}}, "overrides": []})
    else:
        b.add("timeseries", f"{title} per $bucket", [target("A", "/api/v1/dora/series", "points",
              [("start", "time", "timestamp"), ("value", "value", "number"), ("count", "count", "number")], scope,
              extra=[("metric", metric), ("bucket", "$bucket")])], w=20, h=8,
              field={"defaults": {"unit": unit}, "overrides": [{"matcher": {"id": "byName", "options": "count"}, "properties": [{"id": "custom.axisPlacement", "value": "right"}, {"id": "unit", "value": "none"}]}]})
    url, root, cols = distribution
    if metric == "deployment_frequency":
        b.add("histogram", "Distribution of deployments per day", [target("A", "/api/v1/dora/series", "points",
              [("value", "Deployments per day", "number")], scope, extra=[("metric", metric), ("bucket", "day")])], w=12, h=8,
              description="How many days of the window had how many production deployments.")
    else:
        b.add("histogram", "Distribution", [target("A", url, root, cols[:1], scope, extra=[("limit", "1000")])], w=12, h=8,
              description="The facts behind the figure in the window (up to 1,000 newest).",
              field={"defaults": {"unit": unit}, "overrides": []})
    b.add("table", "Facts", [target("A", url, root, cols, scope, extra=[("limit", "100")])], w=12, h=8,
          description="The newest facts behind the figure.")
    return b.json([TEAM, ENVIRONMENT, BUCKET])

def service_view():
    scope = ("service", "environment")
    return overview("doraflow-service", "DORA: service", scope, [SERVICE, ENVIRONMENT], ["service"],
                    "The five DORA metrics of one service, with its deployments as annotations.")

def data_quality():
    scope = ("team", "environment")
    b = Board("doraflow-data-quality", "DORA: data quality", "How complete and clean the data behind the figures is (metrics.md §9).", scope, ["quality"])
    for sel, t, unit, desc in [
        ("data_quality.deployments_linked", "Deployments linked to a change", "percentunit", "Share of production deployments with a deployed change or a known revision."),
        ("data_quality.incidents_attributed", "Incidents attributed", "percentunit", "Share of incidents opened in the window attributed to a deployment."),
        ("data_quality.unlinked_revisions", "Unlinked revisions", "none", "Production deployments whose revision is not a known change."),
        ("data_quality.unmapped_deployments", "Unmapped deployments", "none", "Deployments no catalog service claims (organisation only)."),
        ("data_quality.dropped_changes", "Changes dropped by forced pushes", "none", ""),
        ("data_quality.clock_skew_changes", "Clock-skewed changes", "none", "Changes deployed with a negative raw lead time."),
        ("data_quality.duplicates_ignored", "Duplicate deliveries ignored", "none", "Since the start of the log."),
        ("data_quality.late_corrections", "Late corrections", "none", "Facts rewritten by late data, since the start of the log."),
        ("data_quality.too_late_ignored", "Deliveries too late", "none", "Deliveries about facts already final (older than the horizon)."),
        ("data_quality.commits_not_listed", "Commits not listed", "none", "Commits pushes brought without listing them (their lead time is unknown)."),
    ]:
        stat(b, t, sel, unit, scope, desc)
    b.add("table", "Deployments without a linked change", [target("A", "/api/v1/deployments", "items[linked=false]",
          [("finished_at", "Finished", "timestamp"), ("service", "Service", "string"), ("revision", "Revision", "string")],
          scope, extra=[("limit", "1000")])], w=24, h=8)
    return b.json([TEAM, ENVIRONMENT])

boards = {
    "dora-overview.json": overview("doraflow-overview", "DORA: overview", ("team", "environment"), [TEAM, ENVIRONMENT], ["overview"],
                                   "The five DORA metrics of the organisation or a team, with band, score and the DORA 2025 reference; deployments as annotations (failed ones in red)."),
    "dora-service.json": service_view(),
    "dora-deployment-frequency.json": detail("deployment_frequency", "Deployment frequency", "none",
        "Production deployments per day (metrics.md §6).", False,
        ("/api/v1/deployments", "items", [("finished_at", "Finished", "timestamp"), ("service", "Service", "string"), ("changes", "Changes", "number")])),
    "dora-lead-time.json": detail("lead_time", "Lead time for changes", "s",
        "Time from commit to first production deployment (metrics.md §2).", True,
        ("/api/v1/changes", "items[deployed_at!=null]", [("lead_time", "Lead time", "number"), ("deployed_at", "Deployed", "timestamp"), ("service", "Service", "string"), ("sha", "Commit", "string")])),
    "dora-change-failure-rate.json": detail("change_failure_rate", "Change failure rate", "percentunit",
        "Failed production deployments over production deployments (metrics.md §3).", False,
        ("/api/v1/deployments", "items[failed=true]", [("finished_at", "Finished", "timestamp"), ("service", "Service", "string"), ("revision", "Revision", "string"), ("recovery_time", "Recovery time", "number")])),
    "dora-recovery-time.json": detail("failed_deployment_recovery_time", "Failed deployment recovery time", "s",
        "Time from a failed deployment to its recovery (metrics.md §4).", True,
        ("/api/v1/deployments", "items[failed=true]", [("recovery_time", "Recovery time", "number"), ("finished_at", "Finished", "timestamp"), ("service", "Service", "string")])),
    "dora-time-to-restore.json": detail("time_to_restore", "Time to restore service", "s",
        "Time from an incident's opening to its resolution (metrics.md §4).", True,
        ("/api/v1/incidents", "items", [("time_to_restore", "Time to restore", "number"), ("opened_at", "Opened", "timestamp"), ("service", "Service", "string")])),
    "dora-rework-rate.json": detail("rework_rate", "Deployment rework rate", "percentunit",
        "Deployments that fix a failure over production deployments (metrics.md §5).", False,
        ("/api/v1/deployments", "items[rework=true]", [("finished_at", "Finished", "timestamp"), ("service", "Service", "string"), ("revision", "Revision", "string")])),
    "dora-data-quality.json": data_quality(),
}
out = os.path.dirname(os.path.abspath(__file__))
for name, board in boards.items():
    with open(os.path.join(out, name), "w") as f:
        json.dump(board, f, indent=2)
        f.write("\n")
print("wrote", len(boards))
