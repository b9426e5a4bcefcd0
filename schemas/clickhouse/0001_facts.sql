-- Facts per service, versioned: part 0 holds the live facts, parts 1.. the frozen chunks (in
-- order). A replay writes the same (service, part) again with a version at least as high, and
-- reads take the row of the highest version (argMax), so nothing is counted twice.
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
