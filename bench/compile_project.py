#!/usr/bin/env python3
"""Writes a Jinja-heavy dbt project of N models (default 1,000) for bench/compile.sh.

Shaped like a real project: per domain of 200 models, 20 staging views on the
domain's 5 source tables, 100 intermediate views reading 1 to 3 earlier models,
80 marts reading 2 to 5 intermediate models (every fourth incremental, with an
`is_incremental()` filter on `{{ this }}`). The models call project macros with
loops (status flags, a surrogate key, a column list), one dispatched through
`adapter.dispatch` with a `postgres__` implementation, read `var()`s, set
`config()` in the file and in dbt_project.yml, loop over their parents with
`ref()` inside the loop; every model has 5 documented columns with `unique` and
`not_null` on `id`, staging models an `accepted_values` on `status`, marts a
`relationships` test to their first parent. Deterministic (seeded).
Usage: compile_project.py DIR [MODELS]
"""
import os
import random
import sys

out = sys.argv[1]
models = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
rng = random.Random(17)
domains = max(1, models // 200)
STATUSES = ["active", "paused", "churned", "trial", "done"]


def write(path, text):
    p = os.path.join(out, path)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text)


write("dbt_project.yml", f"""name: bench
version: "1.0.0"
config-version: 2
profile: bench
model-paths: ["models"]
macro-paths: ["macros"]
target-path: "target"
vars:
  start_date: "2025-01-01"
  statuses: {STATUSES}
  amount_scale: 2
models:
  bench:
    +materialized: view
    +tags: ["bench"]
""" + "".join(f"""    d{d}:
      +schema: d{d}
      mart:
        +materialized: table
        +tags: ["mart"]
""" for d in range(domains)))

write("macros/bench.sql", """{% macro cents_to_dollars(column_name, scale=var('amount_scale')) -%}
    round(({{ column_name }} / 100.0)::numeric, {{ scale }})
{%- endmacro %}

{% macro safe_divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('safe_divide', 'bench')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__safe_divide(numerator, denominator) -%}
    ({{ numerator }}) / nullif({{ denominator }}, 0)
{%- endmacro %}

{% macro postgres__safe_divide(numerator, denominator) -%}
    ({{ numerator }})::numeric / nullif(({{ denominator }})::numeric, 0)
{%- endmacro %}

{% macro status_flags(column_name, statuses) -%}
    {%- for status in statuses %}
    case when {{ column_name }} = '{{ status }}' then 1 else 0 end as is_{{ status | lower }}
    {%- if not loop.last %},{% endif %}
    {%- endfor %}
{%- endmacro %}

{% macro surrogate_key(field_list) -%}
    {%- set fields = [] -%}
    {%- for field in field_list -%}
        {%- do fields.append("coalesce(cast(" ~ field ~ " as text), '_null_')") -%}
    {%- endfor -%}
    md5({{ fields | join(" || '-' || ") }})
{%- endmacro %}

{% macro date_window(column_name) -%}
    {{ column_name }} >= '{{ var("start_date") }}'::timestamp
{%- endmacro %}

{% macro select_columns(relation_alias, columns, except=[]) -%}
    {%- for column in columns if column not in except %}
    {{ relation_alias }}.{{ column }}{% if not loop.last %},{% endif %}
    {%- endfor %}
{%- endmacro %}
""")

sources = ["version: 2\nsources:\n"]
for d in range(domains):
    sources.append(f"  - name: src_{d}\n    schema: raw_bench_{d}\n    tables:\n")
    for t in range(5):
        sources.append(f"      - name: t{t}\n        loaded_at_field: created_at\n"
                       f"        columns:\n          - name: id\n            data_tests: [unique, not_null]\n")
write("models/sources.yml", "".join(sources))


# The parents, read in a loop: the first one's rows, the others left-joined on id.
AMOUNT = "(a.amount{% for p in parents[1:] %} + coalesce(p{{ loop.index }}.amount, 0){% endfor %}) as amount,"
JOINS = """from {{ ref(parents[0]) }} as a
{%- for p in parents[1:] %}
left join {{ ref(p) }} as p{{ loop.index }} on p{{ loop.index }}.id = a.id
{%- endfor %}
"""


def columns_yaml(extra_status_test, relationship_to):
    cols = [
        "      - name: id\n        description: Key of the row.\n"
        "        data_tests:\n          - unique\n          - not_null\n"
        + (f"          - relationships:\n              arguments:\n                to: ref('{relationship_to}')\n"
           "                field: id\n" if relationship_to else ""),
        "      - name: customer_id\n        description: The customer the row belongs to.\n",
        "      - name: created_at\n        description: When the row was created (UTC).\n",
        "      - name: amount\n        description: Amount in US dollars, two decimals.\n",
        "      - name: status\n        description: Lifecycle status of the row.\n"
        + ("        data_tests:\n          - accepted_values:\n              arguments:\n"
           f"                values: {STATUSES}\n" if extra_status_test else ""),
    ]
    return "".join(cols)


count = 0
for d in range(domains):
    props = ["version: 2\nmodels:\n"]
    stg, ints = [], []

    def document(name, description, columns):
        global count
        props.append(f"  - name: {name}\n    description: {description}\n    columns:\n{columns}")
        count += 1

    for k in range(20):
        name = f"stg_d{d}_{k}"
        write(f"models/d{d}/staging/{name}.sql", f"""{{{{ config(materialized='view', tags=['staging']) }}}}
{{%- set statuses = var('statuses') -%}}
with src as (
    select * from {{{{ source('src_{d}', 't{k % 5}') }}}}
    where {{{{ date_window('created_at') }}}}
)
select
    id,
    customer_id,
    created_at,
    {{{{ cents_to_dollars('amount_cents') }}}} as amount,
    lower(status) as status,
    {{{{ status_flags('status', statuses) }}}},
    {{{{ surrogate_key(['id', 'customer_id', 'created_at']) }}}} as row_key
from src
""")
        document(name, f"Staging of src_{d}.t{k % 5}.", columns_yaml(True, None))
        stg.append(name)
    for k in range(100):
        name = f"int_d{d}_{k}"
        parents = rng.sample(stg + ints, min(len(stg + ints), rng.randint(1, 3)))
        write(f"models/d{d}/intermediate/{name}.sql", f"""{{%- set parents = {parents} -%}}
{{%- set measures = ['amount', 'is_active', 'is_churned'] -%}}
select
    {{{{ select_columns('a', ['id', 'customer_id', 'created_at', 'status', 'amount'], except=['amount']) }}}},
    {AMOUNT}
    {{{{ safe_divide('a.amount', 'a.customer_id') }}}} as amount_per_customer
    {{%- for m in measures %}},
    {{%- if m == 'amount' %}}
    sum(a.{{{{ m }}}}) over (partition by a.customer_id) as total_{{{{ m }}}}
    {{%- else %}}
    max(a.{{{{ m }}}}) over (partition by a.customer_id) as any_{{{{ m }}}}
    {{%- endif %}}
    {{%- endfor %}}
""" + JOINS)
        document(name, f"Intermediate model {k} of domain {d}.", columns_yaml(False, None))
        ints.append(name)
    for k in range(80):
        name = f"fct_d{d}_{k}"
        parents = rng.sample(ints, rng.randint(2, 5))
        incremental = k % 4 == 0
        head = ("{{ config(materialized='incremental', unique_key='id', on_schema_change='append_new_columns') }}\n"
                if incremental else f"{{{{ config(alias='mart_{d}_{k}', meta={{'owner': 'team_{k % 7}'}}) }}}}\n")
        tail = ("""{% if is_incremental() %}
where a.created_at > (select coalesce(max(created_at), '1900-01-01'::timestamp) from {{ this }})
{% endif %}
""" if incremental else "")
        write(f"models/d{d}/mart/{name}.sql", head + f"""{{%- set parents = {parents} -%}}
select
    a.id,
    a.customer_id,
    a.created_at,
    a.status,
    {AMOUNT}
    {{{{ surrogate_key(['a.id', 'a.status']) }}}} as mart_key
""" + JOINS + tail)
        document(name, f"Mart {k} of domain {d}.", columns_yaml(False, parents[0]))
    write(f"models/d{d}/schema.yml", "".join(props))

print(f"{count} models, {domains * 5} source tables in {out}", file=sys.stderr)
