//! docker-compose.yml and the Dockerfile, checked the way Compose would use them (no Docker
//! engine runs here): every service a role depends on exists and has a health check when waited
//! for healthy; every doraflow command is one the binary has; the configuration the roles get
//! (mounted file plus the compose environment, defaults filled in) passes `check-config`; every
//! file mounted from the repository exists; the Grafana provisioning parses and names the
//! dashboards' data source.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_yaml_ng::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn compose() -> Value {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    let mut value: Value = serde_yaml_ng::from_str(&text).unwrap();
    value.apply_merge().unwrap();
    value
}

/// `${NAME:-default}` as Compose fills it in when NAME is unset.
fn with_defaults(text: &str) -> String {
    let pattern = regex::Regex::new(r"\$\{[A-Z_]+:-([^}]*)\}").unwrap();
    pattern.replace_all(text, "$1").to_string()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

#[test]
fn every_service_waits_for_what_it_needs_and_it_can_tell() {
    let compose = compose();
    let services = compose["services"].as_mapping().unwrap();
    let names: Vec<String> = services.keys().map(text).collect();
    for needed in [
        "kafka",
        "clickhouse",
        "migrate",
        "ingest",
        "aggregate",
        "api",
        "grafana",
    ] {
        assert!(names.iter().any(|n| n == needed), "no {needed} service");
    }
    for (name, service) in services {
        let Some(depends) = service.get("depends_on").and_then(Value::as_mapping) else {
            continue;
        };
        for (target, how) in depends {
            let target_service = &services[target];
            assert!(
                !target_service.is_null(),
                "{name:?} depends on {target:?}, which does not exist"
            );
            match how["condition"].as_str().unwrap() {
                "service_healthy" => assert!(
                    target_service.get("healthcheck").is_some(),
                    "{name:?} waits for {target:?} to be healthy, which has no health check"
                ),
                "service_completed_successfully" => assert_eq!(text(target), "migrate"),
                other => panic!("{name:?}: condition {other}"),
            }
        }
    }
    // The roles start only after migrate, which waits for both servers.
    for role in ["ingest", "aggregate", "api"] {
        assert!(!services[role]["depends_on"]["migrate"].is_null(), "{role}");
    }
    for server in ["kafka", "clickhouse"] {
        assert!(
            !services["migrate"]["depends_on"][server].is_null(),
            "{server}"
        );
    }
}

#[test]
fn the_roles_commands_and_configuration_are_what_the_binary_takes() {
    let compose = compose();
    let services = compose["services"].as_mapping().unwrap();
    let bin = env!("CARGO_BIN_EXE_doraflow");
    let mut roles = 0;
    for (name, service) in services {
        if service["image"].as_str() != Some("doraflow:latest") {
            continue;
        }
        roles += 1;
        let command: Vec<String> = service["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(text)
            .collect();
        assert_eq!(command[..2], ["--config", "/etc/doraflow/doraflow.toml"]);
        // The subcommand and its flags exist.
        let out = Command::new(bin)
            .args(&command[2..3])
            .arg("--help")
            .output()
            .unwrap();
        let usage = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name:?}: {}", command[2]);
        for flag in command[3..].iter().filter(|a| a.starts_with("--")) {
            assert!(
                usage.contains(flag.as_str()),
                "{name:?}: no {flag} in\n{usage}"
            );
        }
        // The configuration it gets: the mounted file and the environment.
        let volumes: Vec<String> = service["volumes"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(text)
            .collect();
        let mounted = volumes
            .iter()
            .find(|v| v.contains(":/etc/doraflow/doraflow.toml"))
            .unwrap();
        let file = repo().join(mounted.split(':').next().unwrap());
        let env: BTreeMap<String, String> = service["environment"]
            .as_mapping()
            .unwrap()
            .iter()
            .map(|(k, v)| (text(k), with_defaults(&text(v))))
            .collect();
        let out = Command::new(bin)
            .args(["--config", file.to_str().unwrap(), "check-config"])
            .envs(&env)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(roles, 4, "migrate, ingest, aggregate, api");
}

#[test]
fn mounted_files_and_the_build_exist() {
    let compose = compose();
    for (name, service) in compose["services"].as_mapping().unwrap() {
        for volume in service
            .get("volumes")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let source = text(volume);
            let source = source.split(':').next().unwrap();
            if source.starts_with("./") {
                assert!(repo().join(source).exists(), "{name:?} mounts {source}");
            }
        }
    }
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("--bin doraflow"));
    assert!(dockerfile.contains("ENTRYPOINT [\"doraflow\"]"));
}

#[test]
fn grafana_is_provisioned_with_the_doraflow_data_source() {
    let dir = repo().join("dashboards/provisioning");
    let datasources: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(dir.join("datasources/doraflow.yaml")).unwrap(),
    )
    .unwrap();
    let source = &datasources["datasources"][0];
    assert_eq!(source["uid"].as_str(), Some("doraflow-api"));
    assert_eq!(
        source["type"].as_str(),
        Some("yesoreyeram-infinity-datasource")
    );
    assert_eq!(
        source["jsonData"]["unsecuredQueryHandling"].as_str(),
        Some("deny")
    );
    assert_eq!(
        source["secureJsonData"]["bearerToken"].as_str(),
        Some("${DORAFLOW_API_TOKEN}")
    );
    let providers: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(dir.join("dashboards/doraflow.yaml")).unwrap(),
    )
    .unwrap();
    let path = providers["providers"][0]["options"]["path"]
        .as_str()
        .unwrap();
    // Where compose mounts dashboards/.
    let compose = compose();
    let grafana_volumes: Vec<String> = compose["services"]["grafana"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(text)
        .collect();
    assert!(
        grafana_volumes
            .iter()
            .any(|v| v.starts_with("./dashboards:") && v.contains(path)),
        "{grafana_volumes:?} does not mount dashboards/ at {path}"
    );
}
