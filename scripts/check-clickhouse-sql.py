#!/usr/bin/env python3
"""Runs every SQL file of schemas/clickhouse/ (the migrations, then the queries) on a current
ClickHouse engine (chdb, from PyPI), with a few rows, and checks what the reads return: the same
files run on the ClickHouse 18.16 test server in the Rust tests. Usage: check-clickhouse-sql.py"""
import pathlib
import sys

import chdb
from chdb import session as chs

root = pathlib.Path(__file__).resolve().parent.parent / "schemas" / "clickhouse"
db = "doraflow_check"


def statements(path, **fill):
    text = "\n".join(l for l in path.read_text().splitlines() if not l.lstrip().startswith("--"))
    text = text.replace("{database}", db)
    for key, value in fill.items():
        text = text.replace("{" + key + "}", str(value))
    return [s.strip() for s in text.split(";") if s.strip()]


s = chs.Session()
print("engine:", s.query("SELECT version()", "CSV").bytes().decode().strip())
s.query(f"CREATE DATABASE IF NOT EXISTS {db}")
files = [root / "migrations_table.sql"] + sorted(root.glob("0*.sql"))
for path in files:
    for statement in statements(path):
        s.query(statement)
    print("ok", path.relative_to(root.parent.parent))
# One insert per version, as the aggregator writes them (current engines collapse the versions of
# a key within one insert).
for rows in ["('a', 0, 5, 'old', 0), ('a', 1, 3, 'frozen', 0), ('b', 0, 2, 'b', 1)", "('a', 0, 7, 'new', 0)"]:
    s.query(f"INSERT INTO {db}.service_facts (service, part, version, facts, log_partition) VALUES {rows}")
s.query(f"INSERT INTO {db}.aggregator_state VALUES ('offset', 1, '10'), ('offset', 2, '20')")
checks = {
    "facts_since.sql": (
        # Partition 0's state is at 6: the row of version 7 is a write in progress, read later.
        {"newer": "(log_partition = 0 AND version > 4 AND version <= 6)"
                  " OR (log_partition = 1 AND version > 1 AND version <= 9)"},
        "a\t0\told\nb\t0\tb",
    ),
    "state.sql": ({}, "offset\t2\t20"),
    "applied_migrations.sql": ({}, ""),
}
failed = False
for name, (fill, expected) in checks.items():
    [query] = statements(root / "queries" / name, **fill)
    got = s.query(query, "TSV").bytes().decode().strip()
    status = "ok" if got == expected else "MISMATCH"
    failed |= got != expected
    print(status, f"schemas/clickhouse/queries/{name}", repr(got))
missing = {p.name for p in (root / "queries").glob("*.sql")} - set(checks)
if missing:
    print("queries without a check:", sorted(missing))
    failed = True
sys.exit(1 if failed else 0)
