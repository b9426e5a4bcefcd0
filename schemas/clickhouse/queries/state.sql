-- The newest value of every aggregator state key.
SELECT key, max(version) AS newest, argMax(value, version) AS value
FROM {database}.aggregator_state
GROUP BY key
ORDER BY key
