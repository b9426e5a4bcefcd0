//! Reading Grafana dashboards the way Grafana and its Infinity data source would: their
//! variables, every Infinity request with the variables and a time range substituted, and the
//! root selector and columns applied to the answer. Selectors are the subset the dashboards use
//! (dotted paths, and one filter `list[field=value]` or `list[field!=value]`); any other form
//! fails, so a dashboard cannot silently rely on something this reading does not check.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The Infinity plugin's type.
pub const INFINITY: &str = "yesoreyeram-infinity-datasource";

/// Every dashboard file.
pub fn files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// An Infinity request found in a dashboard, with where it was found.
pub struct Request {
    /// `panel 3 "Lead time" target A`, for messages.
    pub place: String,
    /// The Infinity query.
    pub query: Value,
    /// Whether an empty answer is acceptable (annotations: a window may have no failure).
    pub may_be_empty: bool,
}

/// Every Infinity request of a dashboard: panel targets and annotation queries.
pub fn requests(dashboard: &Value) -> Vec<Request> {
    let mut found = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            found.push(Request {
                place: format!(
                    "panel {} {:?} target {}",
                    panel["id"], panel["title"], target["refId"]
                ),
                query: target.clone(),
                may_be_empty: false,
            });
        }
    }
    for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
        found.push(Request {
            place: format!("annotation {:?}", annotation["name"]),
            query: annotation["target"].clone(),
            may_be_empty: true,
        });
    }
    found
}

/// Variable names a text refers to (`$name`, `${name}`, `${name:format}`).
pub fn references(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\$([A-Za-z0-9_]+)").unwrap();
    re.captures_iter(text)
        .map(|c| c.get(1).or(c.get(2)).unwrap().as_str().to_string())
        .collect()
}

/// Grafana's own variables.
pub fn is_builtin(name: &str) -> bool {
    name.starts_with("__")
}

/// Substitutes variables and the time range as Grafana does before Infinity sends the request.
pub fn substitute(text: &str, values: &BTreeMap<String, String>, from: &str, to: &str) -> String {
    let re = regex::Regex::new(r"\$\{([A-Za-z0-9_]+)(?::([^}]*))?\}|\$([A-Za-z0-9_]+)").unwrap();
    re.replace_all(text, |c: &regex::Captures| {
        let name = c.get(1).or(c.get(3)).unwrap().as_str();
        let format = c.get(2).map(|m| m.as_str());
        match (name, format) {
            ("__from", Some("date:iso")) => from.to_string(),
            ("__to", Some("date:iso")) => to.to_string(),
            _ => values
                .get(name)
                .unwrap_or_else(|| panic!("variable {name} has no value"))
                .clone(),
        }
    })
    .into_owned()
}

/// The URL Infinity requests for a query: the data source's URL, the query's path, its params.
pub fn url(
    base: &str,
    query: &Value,
    values: &BTreeMap<String, String>,
    from: &str,
    to: &str,
) -> String {
    let path = substitute(query["url"].as_str().unwrap(), values, from, to);
    let params: Vec<(String, String)> = query["url_options"]["params"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| {
                    (
                        p["key"].as_str().unwrap().to_string(),
                        substitute(p["value"].as_str().unwrap(), values, from, to),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let encoded = serde_urlencoded::to_string(&params).unwrap();
    if encoded.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}{path}?{encoded}")
    }
}

/// Applies a root selector; the rows it gives (an object is one row).
pub fn select(answer: &Value, selector: &str) -> Result<Vec<Value>, String> {
    let mut current = answer.clone();
    if !selector.is_empty() {
        for segment in selector.split('.') {
            current = step(&current, segment)?;
        }
    }
    Ok(match current {
        Value::Array(rows) => rows,
        Value::Null => Vec::new(),
        other => vec![other],
    })
}

fn step(value: &Value, segment: &str) -> Result<Value, String> {
    let Some((name, filter)) = segment.split_once('[') else {
        return Ok(value.get(segment).cloned().unwrap_or(Value::Null));
    };
    let filter = filter
        .strip_suffix(']')
        .ok_or_else(|| format!("unsupported selector segment `{segment}`"))?;
    let (field, negate, literal) = if let Some((f, v)) = filter.split_once("!=") {
        (f, true, v)
    } else if let Some((f, v)) = filter.split_once('=') {
        (f, false, v)
    } else {
        return Err(format!("unsupported filter `{filter}`"));
    };
    let expected: Value = serde_json::from_str(literal)
        .map_err(|_| format!("filter value `{literal}` is not a JSON literal"))?;
    let list = value
        .get(name)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("`{name}` is not a list"))?;
    Ok(Value::Array(
        list.iter()
            .filter(|row| (row.get(field).unwrap_or(&Value::Null) == &expected) != negate)
            .cloned()
            .collect(),
    ))
}

/// Checks the declared columns against the rows: each present in every row with its declared
/// type (null allowed), and each with a value in at least one row.
pub fn check_columns(query: &Value, rows: &[Value]) -> Result<(), String> {
    for column in query["columns"].as_array().unwrap() {
        let selector = column["selector"].as_str().unwrap();
        let kind = column["type"].as_str().unwrap();
        let mut seen_value = false;
        for row in rows {
            let mut cell = row.clone();
            for part in selector.split('.') {
                cell = cell
                    .get(part)
                    .cloned()
                    .ok_or_else(|| format!("column `{selector}` is missing in {row}"))?;
            }
            if cell.is_null() {
                continue;
            }
            seen_value = true;
            let fits = match kind {
                "number" => cell.is_number(),
                "string" => cell.is_string(),
                "boolean" => cell.is_boolean(),
                "timestamp" => cell
                    .as_str()
                    .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
                other => return Err(format!("column `{selector}`: unchecked type `{other}`")),
            };
            if !fits {
                return Err(format!("column `{selector}` is not a {kind}: {cell}"));
            }
        }
        if !rows.is_empty() && !seen_value {
            return Err(format!("column `{selector}` is null in every row"));
        }
    }
    Ok(())
}
