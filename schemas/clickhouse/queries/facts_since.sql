-- The newest row of every (service, part) among the rows a reader has not read yet and that the
-- state of the partition that wrote them covers: what a reader loads. {newer} is a condition on
-- log_partition and version, built by the reader per partition from the version it has seen and
-- the partition's state (`version > seen AND version <= state`), so that a part written again
-- after the state was read (a write in progress) is read as of the state, together with the
-- index that names it. The newest versions are found on the small columns first, so that only
-- their facts are read, however many older versions the background merges have not collapsed yet.
SELECT service, part, facts
FROM {database}.service_facts
WHERE ({newer}) AND (service, part, version) IN (
    SELECT service, part, max(version)
    FROM {database}.service_facts
    WHERE {newer}
    GROUP BY service, part
)
ORDER BY service, part
LIMIT 1 BY service, part
