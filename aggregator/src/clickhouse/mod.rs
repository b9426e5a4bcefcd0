//! The ClickHouse side of the distributed deployment: the schema (the DDL in
//! `schemas/clickhouse/` applied in order by `doraflow migrate`, each migration recorded in
//! `doraflow_migrations` so that it runs once) and the facts written and read ([`facts`]). The SQL is kept to what both ClickHouse 18.16 (the
//! test server here) and current versions run; `scripts/check-clickhouse-sql.py` runs every file
//! on a current engine (chdb).

mod encoding;
pub mod facts;
mod windows;

use clickhouse::Client;

/// The migrations, in order: (version, name, SQL).
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "0001_facts",
        include_str!("../../../schemas/clickhouse/0001_facts.sql"),
    ),
    (
        2,
        "0002_partitions",
        include_str!("../../../schemas/clickhouse/0002_partitions.sql"),
    ),
];

const MIGRATIONS_TABLE: &str = include_str!("../../../schemas/clickhouse/migrations_table.sql");
const APPLIED: &str = include_str!("../../../schemas/clickhouse/queries/applied_migrations.sql");

/// Where the store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickHouseSettings {
    /// HTTP interface, `http://host:8123`.
    pub url: String,
    /// Database of the tables (created if missing).
    pub database: String,
    /// User, if not `default`.
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
}

/// Errors of the ClickHouse store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The server cannot be reached or refused a statement.
    #[error("ClickHouse: {0}")]
    Server(#[from] clickhouse::error::Error),
    /// A row that does not decode.
    #[error("ClickHouse holds an unreadable row: {0}")]
    Corrupt(String),
    /// A database name that could break out of its place in the SQL.
    #[error("`{0}` is not a plain database name (letters, digits and `_`)")]
    BadDatabase(String),
}

/// The server's version, as `(major, minor)`.
pub async fn server_version(client: &Client) -> Result<(u32, u32), StoreError> {
    let text: String = client.query("SELECT version()").fetch_one().await?;
    let mut parts = text.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    Ok((parts.next().unwrap_or(0), parts.next().unwrap_or(0)))
}

/// A client for the settings. Row validation (which needs `RowBinaryWithNamesAndTypes`) is
/// switched off for servers before 24.10 such as 18.16, and kept on for current ones.
pub async fn connect(settings: &ClickHouseSettings) -> Result<Client, StoreError> {
    let mut client = Client::default()
        .with_url(&settings.url)
        .with_validation(false);
    if let Some(user) = &settings.user {
        client = client.with_user(user);
    }
    if let Some(password) = &settings.password {
        client = client.with_password(password);
    }
    let (major, minor) = server_version(&client).await?;
    if (major, minor) >= (24, 10) {
        client = client.with_validation(true);
    }
    Ok(client)
}

/// The statements of a SQL file: `;`-separated, comments dropped, `{database}` filled in.
pub fn statements(sql: &str, database: &str) -> Vec<String> {
    let text: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    text.split(';')
        .map(|s| s.trim().replace("{database}", database))
        .filter(|s| !s.is_empty())
        .collect()
}

fn check_database(name: &str) -> Result<(), StoreError> {
    let plain = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        Ok(())
    } else {
        Err(StoreError::BadDatabase(name.into()))
    }
}

/// Creates the database and applies the migrations not applied yet. Returns the names applied
/// now (empty when the schema was current).
pub async fn migrate(settings: &ClickHouseSettings) -> Result<Vec<String>, StoreError> {
    check_database(&settings.database)?;
    let client = connect(settings).await?;
    let database = &settings.database;
    client
        .query(&format!("CREATE DATABASE IF NOT EXISTS {database}"))
        .execute()
        .await?;
    for statement in statements(MIGRATIONS_TABLE, database) {
        client.query(&statement).execute().await?;
    }
    let applied: Vec<u32> = client
        .query(&statements(APPLIED, database)[0])
        .fetch_all()
        .await?;
    let mut now = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        for statement in statements(sql, database) {
            client.query(&statement).execute().await?;
        }
        client
            .query(&format!(
                "INSERT INTO {database}.doraflow_migrations (version, name, applied_at) VALUES ({version}, '{name}', now())"
            ))
            .execute()
            .await?;
        now.push((*name).to_string());
    }
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_fill_and_drop_comments() {
        let sql = "-- a comment; with a semicolon\nCREATE TABLE {database}.t (x UInt8) ENGINE = Memory;\n\n-- end\n";
        assert_eq!(
            statements(sql, "dora"),
            vec!["CREATE TABLE dora.t (x UInt8) ENGINE = Memory"]
        );
        assert_eq!(statements(MIGRATIONS[0].2, "d").len(), 2);
    }

    #[test]
    fn database_names_are_plain() {
        assert!(check_database("doraflow_1").is_ok());
        for bad in ["", "1db", "a-b", "x; DROP TABLE y", "a.b"] {
            assert!(check_database(bad).is_err(), "{bad}");
        }
    }

    /// Against a real server when `DORAFLOW_TEST_CLICKHOUSE` names one (scripts/test starts
    /// ClickHouse 18.16 and sets it).
    #[tokio::test]
    async fn migrations_apply_once_on_a_real_server() {
        let Ok(url) = std::env::var("DORAFLOW_TEST_CLICKHOUSE") else {
            eprintln!("DORAFLOW_TEST_CLICKHOUSE is not set: skipped (scripts/test sets it)");
            return;
        };
        let settings = ClickHouseSettings {
            url,
            database: format!("migrate_test_{}", std::process::id()),
            user: None,
            password: None,
        };
        assert_eq!(
            migrate(&settings).await.unwrap(),
            vec!["0001_facts", "0002_partitions"]
        );
        assert!(migrate(&settings).await.unwrap().is_empty());
        let client = connect(&settings).await.unwrap();
        let tables: Vec<String> = client
            .query(&format!(
                "SELECT name FROM system.tables WHERE database = '{}' ORDER BY name",
                settings.database
            ))
            .fetch_all()
            .await
            .unwrap();
        assert_eq!(
            tables,
            vec!["aggregator_state", "doraflow_migrations", "service_facts"]
        );
        client
            .query(&format!("DROP DATABASE {}", settings.database))
            .execute()
            .await
            .unwrap();
    }
}
