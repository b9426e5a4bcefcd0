//! PagerDuty V3 webhooks: `incident.triggered`, `.acknowledged`, `.resolved` and `.reopened`.
//! Other event types are authentic but ignored.

use doraflow_schemas::Event;
use doraflow_schemas::event::{IncidentChange, IncidentUpdate};
use serde::Deserialize;

use super::{NormalizeError, Normalized, parse_time};

#[derive(Deserialize)]
struct Payload {
    event: PdEvent,
}

#[derive(Deserialize)]
struct PdEvent {
    id: String,
    event_type: String,
    occurred_at: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Incident {
    id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    service: Option<Reference>,
}

#[derive(Deserialize)]
struct Reference {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    summary: Option<String>,
}

/// The `event.id` of a PagerDuty body, the delivery key when `X-Webhook-Id` is absent.
pub fn event_id(body: &[u8]) -> Result<String, NormalizeError> {
    let payload: Payload = serde_json::from_slice(body)?;
    Ok(payload.event.id)
}

/// Normalizes one PagerDuty V3 delivery.
pub fn normalize(body: &[u8]) -> Result<Normalized, NormalizeError> {
    let payload: Payload = serde_json::from_slice(body)?;
    let event = payload.event;
    let change = match event.event_type.as_str() {
        "incident.triggered" => IncidentChange::Triggered,
        "incident.acknowledged" => IncidentChange::Acknowledged,
        "incident.resolved" => IncidentChange::Resolved,
        "incident.reopened" => IncidentChange::Reopened,
        other => {
            return Ok(Normalized::Ignored(format!(
                "the {other} event carries no metric"
            )));
        }
    };
    let data = event
        .data
        .ok_or_else(|| NormalizeError::Malformed("missing field `event.data`".into()))?;
    let incident: Incident = serde_json::from_value(data)
        .map_err(|e| NormalizeError::Malformed(format!("event.data: {e}")))?;
    let occurred_at = parse_time("event.occurred_at", &event.occurred_at)?;
    let created_at = incident
        .created_at
        .as_deref()
        .map(|t| parse_time("event.data.created_at", t))
        .transpose()?;
    let mut title = incident.title.unwrap_or_default();
    if let Some(description) = incident
        .description
        .filter(|d| !d.is_empty() && *d != title)
    {
        title = format!("{title}\n{description}");
    }
    let (service_id, service_name) = match incident.service {
        Some(s) => (s.id, s.summary),
        None => (None, None),
    };
    Ok(Normalized::Events(vec![Event::Incident(IncidentUpdate {
        id: incident.id,
        service_id,
        service_name,
        title,
        change,
        occurred_at,
        created_at,
    })]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::test_support::fixture_at;
    use doraflow_schemas::time::parse_rfc3339;

    fn fixture(name: &str) -> Vec<u8> {
        fixture_at(&format!("pagerduty/{name}"))
    }

    fn incident(name: &str) -> IncidentUpdate {
        match normalize(&fixture(name)).unwrap() {
            Normalized::Events(mut events) => match events.remove(0) {
                Event::Incident(i) => i,
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn triggered_gives_an_opened_incident_of_its_service() {
        let i = incident("triggered_v3.json");
        assert_eq!(i.id, "PFQZPSY");
        assert_eq!(i.change, IncidentChange::Triggered);
        assert_eq!(i.service_id.as_deref(), Some("PA2P440"));
        assert_eq!(i.service_name.as_deref(), Some("pig208"));
        assert_eq!(i.title, "Test Incident 3");
        assert_eq!(
            i.occurred_at,
            parse_rfc3339("2021-06-04T13:35:29.781Z").unwrap()
        );
        assert_eq!(i.created_at, None);
    }

    #[test]
    fn resolved_acknowledged_and_reopened_parse() {
        assert_eq!(
            incident("resolved_v3.json").change,
            IncidentChange::Resolved
        );
        assert_eq!(
            incident("acknowledged_v3.json").change,
            IncidentChange::Acknowledged
        );
        let reopened = incident("reopened_v3.json");
        assert_eq!(reopened.change, IncidentChange::Reopened);
        assert_eq!(reopened.id, "Q05XJA8GDXGOB3");
        assert_eq!(
            reopened.created_at,
            Some(parse_rfc3339("2026-03-30T13:37:07Z").unwrap())
        );
        assert_eq!(reopened.service_name.as_deref(), Some("Default Service"));
    }

    #[test]
    fn other_event_types_are_ignored() {
        for name in [
            "priority_updated_v3.json",
            "webhookv3_test.defaultBody.json",
        ] {
            assert!(
                matches!(normalize(&fixture(name)).unwrap(), Normalized::Ignored(_)),
                "{name}"
            );
        }
        assert_eq!(
            event_id(&fixture("triggered_v3.json")).unwrap(),
            "01BZYIL05THJDFF2Y08X9SVMTU"
        );
    }
}
