#!/usr/bin/env python3
"""Writes a dbt project of N models (default 2,000) for bench/docs.sh, and the SQL
that creates its source tables.

Shape, per domain of 200 models: 20 staging views on the domain's source tables,
100 intermediate models reading 1 to 3 earlier models of the domain, 80 marts
reading 2 to 5 intermediate models (one in ten also reads a mart of the previous
domain). Every model has a description and 5 documented columns; `id` carries
unique and not_null tests. Deterministic (seeded).
Usage: docs_project.py DIR [MODELS]
"""
import json
import os
import random
import sys

out = sys.argv[1]
models = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
rng = random.Random(7)
domains = max(1, models // 200)
COLS = [
    ("id", "Key of the row."),
    ("customer_id", "The customer the row belongs to."),
    ("created_at", "When the row was created (UTC)."),
    ("amount", "Amount in US dollars, two decimals."),
    ("status", "Lifecycle status of the row."),
]


def write(path, text):
    p = os.path.join(out, path)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text)


write("dbt_project.yml", """name: bench
version: "1.0.0"
config-version: 2
profile: bench
model-paths: ["models"]
target-path: "target"
models:
  bench:
    +materialized: view
""")

ddl = []
sources = ["version: 2\nsources:\n"]
for d in range(domains):
    sources.append(f"  - name: src_{d}\n    schema: raw_bench_{d}\n    description: Raw tables of domain {d}.\n    tables:\n")
    ddl.append(f"create schema if not exists raw_bench_{d};")
    for t in range(5):
        ddl.append(
            f"create table if not exists raw_bench_{d}.t{t} (id bigint primary key, customer_id bigint, "
            f"created_at timestamp, amount numeric(12,2), status text);"
            f"insert into raw_bench_{d}.t{t} select g, g % 97, timestamp '2026-01-01' + g * interval '1 hour', g * 1.25, "
            f"case when g % 3 = 0 then 'active' else 'done' end from generate_series(1, 50) g on conflict do nothing;")
        cols = "".join(f"          - name: {c}\n            description: {desc}\n" for c, desc in COLS)
        sources.append(f"      - name: t{t}\n        description: Source table {t} of domain {d}.\n"
                       f"        columns:\n{cols}")
write("models/sources.yml", "".join(sources))
with open(os.path.join(out, "sources.sql"), "w") as f:
    f.write("\n".join(ddl) + "\n")

count = 0
prev_marts = []
for d in range(domains):
    names = {"stg": [], "int": [], "fct": []}
    props = ["version: 2\nmodels:\n"]

    def model(kind, idx, parents_sql, desc):
        global count
        name = f"{kind}_d{d}_{idx}"
        sql = ["select a.id, a.customer_id, a.created_at,",
               "       (a.amount" + "".join(f" + coalesce(p{i}.amount, 0)" for i in range(1, len(parents_sql))) + ") as amount,",
               "       a.status",
               f"from {parents_sql[0]} as a"]
        for i, p in enumerate(parents_sql[1:], start=1):
            sql.append(f"left join {p} as p{i} on p{i}.id = a.id")
        write(f"models/d{d}/{kind}/{name}.sql", "\n".join(sql) + "\n")
        cols = "".join(
            f"      - name: {c}\n        description: {desc_}\n"
            + ("        data_tests:\n          - unique\n          - not_null\n" if c == "id" else "")
            for c, desc_ in COLS)
        props.append(f"  - name: {name}\n    description: {json.dumps(desc)}\n    columns:\n{cols}")
        names[kind].append(name)
        count += 1

    for k in range(20):
        model("stg", k, [f"{{{{ source('src_{d}', 't{k % 5}') }}}}"],
              f"Staging of src_{d}.t{k % 5}: renamed and typed columns, one row per source row.")
    for k in range(100):
        pool = names["stg"] + names["int"]
        ps = rng.sample(pool, min(len(pool), rng.randint(1, 3)))
        model("int", k, [f"{{{{ ref('{p}') }}}}" for p in ps],
              f"Intermediate model {k} of domain {d}: joins {', '.join(ps)}.")
    for k in range(80):
        ps = rng.sample(names["int"], rng.randint(2, 5))
        if prev_marts and rng.random() < 0.1:
            ps.append(rng.choice(prev_marts))
        model("fct", k, [f"{{{{ ref('{p}') }}}}" for p in ps],
              f"Mart {k} of domain {d}, for the reporting layer: reads {len(ps)} models.")
    prev_marts = names["fct"]
    write(f"models/d{d}/schema.yml", "".join(props))

print(f"{count} models, {domains * 5} source tables in {out}", file=sys.stderr)
