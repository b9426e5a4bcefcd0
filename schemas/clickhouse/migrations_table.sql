-- Which migrations of schemas/clickhouse/ ran, and when.
CREATE TABLE IF NOT EXISTS {database}.doraflow_migrations (
    version UInt32,
    name String,
    applied_at DateTime
) ENGINE = MergeTree ORDER BY version;
