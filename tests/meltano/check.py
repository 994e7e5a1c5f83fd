"""Checks of the end-to-end test that are easier in Python than in bash.

Run with the Python of the Meltano virtual environment (it has PyYAML):

    python check.py definitions REPO_DIR ABOUT_JSON
        plugin.yml matches the binary's settings (`--about --format json`): every
        setting, with env RELUVIA_TRANSFORM_<NAME>, the kind of its JSON type, the
        schema's default as `value` (except host/port, see plugin.yml), secrets
        `sensitive: true`; and the repository's meltano.yml declares the same
        settings and commands for reluvia-transform.
    python check.py raw-types COLUMNS_FILE REPO_DIR
        COLUMNS_FILE holds `schema|table|column|data_type` lines of the landed raw
        tables; they must be the columns and types of docs/raw-contract.md (derived from
        schemas/raw/*.json) plus the loader's seven _sdc_* columns.
    python check.py meltano-schema MELTANO_YML PLUGIN_YML VENV
        MELTANO_YML (a project after `meltano add --from-ref PLUGIN_YML`) and
        PLUGIN_YML as a utility of a project, without the MeltanoHub page fields
        Meltano does not keep (keywords, maintenance_status, next_steps, usage,
        settings_preamble), validate against meltano.schema.json, the JSON Schema in
        the `meltano` package of VENV.
    python check.py config-list OUTPUT_FILE ABOUT_JSON
        `meltano config list --all reluvia-transform` lists every setting with its
        environment variable and description.

Exits non-zero with one line per problem.
"""

import json
import sys
from pathlib import Path

import yaml

KIND_OF_TYPE = {"string": "string", "integer": "integer", "number": "decimal", "boolean": "boolean", "object": "object"}
# Settings a lower-precedence source can supply (PG_ANALYTICS_*, DBT_POSTGRES_*,
# profiles.yml, libpq PG*): a plugin.yml default, exported by Meltano as
# RELUVIA_TRANSFORM_<NAME>, would hide them.
NO_VALUE = {"host", "port", "schema", "threads", "sslmode", "connect_timeout", "keepalives_idle", "project_dir"}

# Required settings whose default is the data team's variable (see plugin.yml).
FROM_ENV = {"user": "$PG_ANALYTICS_USER", "dbname": "$PG_ANALYTICS_DBNAME"}

SDC_COLUMNS = {
    "_sdc_extracted_at": "timestamp without time zone",
    "_sdc_received_at": "timestamp without time zone",
    "_sdc_batched_at": "timestamp without time zone",
    "_sdc_deleted_at": "timestamp without time zone",
    "_sdc_sequence": "bigint",
    "_sdc_table_version": "bigint",
    "_sdc_sync_started_at": "bigint",
}


def fail(problems: list[str]) -> None:
    if problems:
        for p in problems:
            print(f"check.py: {p}", file=sys.stderr)
        sys.exit(1)


def definitions(repo: Path, about_file: Path) -> None:
    about = json.loads(about_file.read_text())
    props = about["settings"]["properties"]
    plugin = yaml.safe_load((repo / "plugin.yml").read_text())
    problems = []
    defined = {s["name"]: s for s in plugin["settings"]}
    if list(defined) != list(props):
        problems.append(
            f"plugin.yml settings {list(defined)} differ from the binary's {list(props)}"
        )
    for name, prop in props.items():
        s = defined.get(name)
        if s is None:
            continue
        if s.get("env") != f"RELUVIA_TRANSFORM_{name.upper()}":
            problems.append(f"plugin.yml {name}: env is {s.get('env')!r}")
        kind = "options" if "enum" in prop else KIND_OF_TYPE[prop["type"]]
        if s.get("kind") != kind:
            problems.append(f"plugin.yml {name}: kind {s.get('kind')!r}, expected {kind!r}")
        if kind == "options" and [o["value"] for o in s.get("options", [])] != prop["enum"]:
            problems.append(f"plugin.yml {name}: options differ from {prop['enum']}")
        if name in FROM_ENV:
            if s.get("value") != FROM_ENV[name]:
                problems.append(f"plugin.yml {name}: value must be {FROM_ENV[name]!r}")
        elif name in NO_VALUE or "default" not in prop:
            if "value" in s:
                problems.append(f"plugin.yml {name}: must have no value")
        elif s.get("value") != prop["default"]:
            problems.append(
                f"plugin.yml {name}: value {s.get('value')!r}, binary default {prop['default']!r}"
            )
        if bool(s.get("sensitive")) != bool(prop.get("x-sensitive")):
            problems.append(f"plugin.yml {name}: sensitive should be {bool(prop.get('x-sensitive'))}")
        if s.get("kind") == "password":
            problems.append(f"plugin.yml {name}: kind password is deprecated")
        if not s.get("label") or not s.get("description"):
            problems.append(f"plugin.yml {name}: label and description are required")
    for command in ["build", "run", "seed", "test", "compile", "freshness", "debug", "demo", "about",
                    "report", "docs-generate", "docs-serve", "init", "source-check"]:
        if command not in plugin.get("commands", {}):
            problems.append(f"plugin.yml: command {command} is missing")

    version = next(
        line.split('"')[1] for line in (repo / "Cargo.toml").read_text().splitlines()
        if line.startswith("version = ")
    )
    if plugin.get("pip_url") != f"reluvia-transform=={version}":
        problems.append(f"plugin.yml: pip_url must be reluvia-transform=={version}")
    if "env" in plugin:
        problems.append("plugin.yml: `env` is not allowed by MeltanoHub's utility schema")
    for key in ["keywords", "maintenance_status", "next_steps", "usage", "settings_preamble"]:
        if not plugin.get(key):
            problems.append(f"plugin.yml: {key} is missing")

    shipped = yaml.safe_load((repo / "meltano.yml").read_text())
    utilities = [u for u in shipped["plugins"]["utilities"] if u["name"] == plugin["name"]]
    if len(utilities) != 1:
        problems.append("meltano.yml: no reluvia-transform utility")
    else:
        u = utilities[0]
        for key in ["namespace", "variant", "executable", "settings", "commands",
                    "settings_group_validation"]:
            if u.get(key) != plugin.get(key):
                problems.append(f"meltano.yml reluvia-transform: {key} differs from plugin.yml")
    fail(problems)


def raw_types(columns_file: Path, repo: Path) -> None:
    landed: dict[tuple[str, str], dict[str, str]] = {}
    for line in columns_file.read_text().splitlines():
        schema, table, column, data_type = line.split("|")
        landed.setdefault((schema, table), {})[column] = data_type
    problems = []
    for schema_file in sorted((repo / "schemas" / "raw").glob("*.json")):
        raw_schema, table = schema_file.stem.split(".")
        props = json.loads(schema_file.read_text())["schema"]["properties"]
        expected = {}
        for column, p in props.items():
            types = p["type"] if isinstance(p["type"], list) else [p["type"]]
            t = next(t for t in types if t != "null")
            if t == "string" and p.get("format") == "date-time":
                expected[column] = "timestamp without time zone"
            elif t == "string" and p.get("format") == "date":
                expected[column] = "date"
            else:
                expected[column] = {
                    "string": "text", "integer": "bigint", "number": "numeric",
                    "boolean": "boolean", "object": "jsonb",
                }[t]
        expected.update(SDC_COLUMNS)
        got = landed.get((raw_schema, table))
        if got is None:
            problems.append(f"{raw_schema}.{table} was not landed")
            continue
        for column, t in expected.items():
            if got.get(column) != t:
                problems.append(f"{raw_schema}.{table}.{column}: landed as {got.get(column)}, contract {t}")
        for column in sorted(set(got) - set(expected)):
            problems.append(f"{raw_schema}.{table}.{column}: not in the raw contract")
    fail(problems)


HUB_PAGE_FIELDS = ["keywords", "maintenance_status", "next_steps", "usage", "settings_preamble"]


def meltano_schema(meltano_yml: Path, plugin_yml: Path, venv: Path) -> None:
    import jsonschema

    schema_file = next(venv.glob("lib/python*/site-packages/meltano/schemas/meltano.schema.json"))
    validator = jsonschema.Draft202012Validator(json.loads(schema_file.read_text()))
    plugin = yaml.safe_load(plugin_yml.read_text())
    for key in HUB_PAGE_FIELDS:
        plugin.pop(key, None)
    problems = []
    for what, doc in [
        (str(meltano_yml), yaml.safe_load(meltano_yml.read_text())),
        (f"{plugin_yml} as a utility", {"plugins": {"utilities": [plugin]}}),
    ]:
        for e in validator.iter_errors(doc):
            problems.append(f"{what}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
    fail(problems)


def config_list(output_file: Path, about_file: Path) -> None:
    text = output_file.read_text()
    props = json.loads(about_file.read_text())["settings"]["properties"]
    problems = []
    for name, prop in props.items():
        # An alias adds its variable: `dbname [env: RELUVIA_TRANSFORM_DBNAME, …_DATABASE]`.
        line = f"{name} [env: RELUVIA_TRANSFORM_{name.upper()}"
        if line not in text:
            problems.append(f"config list: no line '{line}'")
    plugin_descriptions = [s["description"] for s in yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "plugin.yml").read_text())["settings"]]
    for d in plugin_descriptions:
        if d not in text:
            problems.append(f"config list: description missing: {d[:60]}…")
    fail(problems)


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "definitions":
        definitions(Path(sys.argv[2]), Path(sys.argv[3]))
    elif what == "raw-types":
        raw_types(Path(sys.argv[2]), Path(sys.argv[3]))
    elif what == "meltano-schema":
        meltano_schema(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    elif what == "config-list":
        config_list(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit(f"check.py: unknown check {what}")
