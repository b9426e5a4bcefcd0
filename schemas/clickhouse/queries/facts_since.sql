-- The newest row of every (service, part) that is newer than what the reader has seen of the
-- partition that wrote it: what a reader loads. {newer} is a condition on log_partition and
-- newest, built by the reader from the versions it has seen per partition.
SELECT service, part, argMax(log_partition, version) AS log_partition, max(version) AS newest,
       argMax(facts, version) AS facts
FROM {database}.service_facts
GROUP BY service, part
HAVING {newer}
ORDER BY service, part
