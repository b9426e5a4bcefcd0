-- The events-topic partition whose aggregator wrote a row: versions are that partition's log
-- offsets, so a reader remembers the newest version it has seen per partition.
ALTER TABLE {database}.service_facts ADD COLUMN log_partition UInt32 DEFAULT 0
