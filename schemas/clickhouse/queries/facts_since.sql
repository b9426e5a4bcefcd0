-- The newest row of every (service, part) written after a version: what a reader loads.
SELECT service, part, max(version) AS newest, argMax(facts, version) AS facts
FROM {database}.service_facts
GROUP BY service, part
HAVING newest > {after}
ORDER BY service, part
