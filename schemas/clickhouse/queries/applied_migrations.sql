SELECT version FROM {database}.doraflow_migrations ORDER BY version
