#!/usr/bin/env python3
"""Writes, for bench/scale.sh, the psql script of the project's models as plain SQL:
what a hand-written script would run to build the same tables, with nothing of our
engine (no swap, no ANALYZE, no catalog queries, one model after the other on one
connection). Each table model's compiled SQL from a run's manifest.json becomes
`create table SCHEMA.name as …` with the model's `indexes`, inside a transaction
that first applies its `session_settings`, in dependency order; refs read the
relations the run built. SCHEMA must exist and be empty (bench/scale.sh creates it
before and drops it after, outside the timing).
Usage: sql_floor.py MANIFEST SCHEMA
"""
import json
import sys

manifest = json.load(open(sys.argv[1]))
schema = sys.argv[2]


def quote(name):
    return '"' + name.replace('"', '""') + '"'


def literal(value):
    if isinstance(value, bool):
        value = "on" if value else "off"
    return "'" + str(value).replace("'", "''") + "'"


models = {
    uid: node
    for uid, node in manifest["nodes"].items()
    if node["resource_type"] == "model" and node["config"].get("materialized") == "table"
}
done, order = set(), []


def visit(uid):
    if uid in done:
        return
    done.add(uid)
    for parent in models[uid]["depends_on"]["nodes"]:
        if parent in models:
            visit(parent)
    order.append(uid)


for uid in sorted(models):
    visit(uid)

target = quote(schema)
for uid in order:
    node = models[uid]
    table = f"{target}.{quote(node['alias'] or node['name'])}"
    print("begin;")
    for name, value in (node["config"].get("session_settings") or {}).items():
        print(f"select set_config({literal(name)}, {literal(value)}, true);")
    print(f"create table {table} as\n{node['compiled_code']}\n;")
    for index in node["config"].get("indexes") or []:
        unique = "unique " if index.get("unique") else ""
        using = f" using {index['type']}" if index.get("type") else ""
        print(f"create {unique}index on {table}{using} ({', '.join(index['columns'])});")
    print("commit;")
