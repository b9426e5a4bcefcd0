-- Facts per service, versioned: part 0 is the index (the frozen chunks and live windows that
-- make up the facts, in order; before 2026-11-27 it held the live facts whole), the other parts
-- the frozen chunks and the live windows (aggregator/src/clickhouse/facts.rs), in `facts`: the
-- index as JSON, chunks and windows in a binary encoding (encoding.rs; JSON before 2026-11-27,
-- still read). A replay writes
-- the same (service, part) again with a version at least as high, and reads take the row of the
-- highest version (argMax), so nothing is counted twice.
CREATE TABLE IF NOT EXISTS {database}.service_facts (
    service String,
    part UInt32,
    version UInt64,
    facts String
) ENGINE = ReplacingMergeTree(version) ORDER BY (service, part);

-- The aggregator's counters and the log offset its published facts cover, versioned the same way.
CREATE TABLE IF NOT EXISTS {database}.aggregator_state (
    key String,
    version UInt64,
    value String
) ENGINE = ReplacingMergeTree(version) ORDER BY key;
