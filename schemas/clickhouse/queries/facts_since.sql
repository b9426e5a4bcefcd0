-- The newest row of every (service, part) that is newer than what the reader has seen of the
-- partition that wrote it: what a reader loads. {newer} is a condition on log_partition and
-- newest, built by the reader from the versions it has seen per partition. The newest versions
-- are found on the small columns first, so that only their facts are read, however many older
-- versions the background merges have not collapsed yet.
SELECT service, part, facts
FROM {database}.service_facts
WHERE (service, part, version) IN (
    SELECT service, part, newest FROM (
        SELECT service, part, max(version) AS newest, argMax(log_partition, version) AS log_partition
        FROM {database}.service_facts
        GROUP BY service, part
        HAVING {newer}
    )
)
ORDER BY service, part
LIMIT 1 BY service, part
