#!/usr/bin/env python3
"""Differential test: dbt-core and reluvia-transform on the same dbt projects.

Each fixture (tests/dbt/fixtures/<name>/) is a dbt project (`project/`) and a
scenario (`steps.yml`):

    pending: "why our binary cannot run it yet"   # optional
    setup: |                                      # optional SQL, run once
      create schema raw; ...
    steps:
      - name: first load                          # optional
        sql: |                                    # optional SQL run before the command
          insert into raw.x ...
        files:                                    # optional: project files to write
          models/broken.sql: "select {{ nope }}"  #   before the command (null deletes)
        shell: |                                  # optional: bash in the directory above
          git init -q pkg_repo                    #   project/, after files:
        command: [build, --select, "x+"]          # run with BOTH tools
        expect_exit: 1                            # optional: what dbt must exit with
        save_state: prod                          # optional: copy target/'s manifest.json and
                                                  #   run_results.json to <project>/prod, for a
                                                  #   later `--state prod`
        run_with: dbt                             # optional: this step runs with this
                                                  #   tool (dbt or ours) in both databases
    observe: [indexes, grants]                    # optional: also compare these
                                                  # (also comments, persistence, definitions,
                                                  # packages)
    hub: true                                     # optional: serve <work dir>/hub/ over HTTP
                                                  #   on loopback as a stand-in dbt Hub
    clock_columns:                                # optional: columns stamped from the
      snaps.orders_snapshot: [dbt_valid_to]       #   clock, compared for shape

Each tool gets its own fresh database (same setup and step SQL) and a profiles.yml
pointing at it. After each step this compares, tool against tool:

  * the exit code;
  * run/build/test/seed/snapshot: run_results.json as a set of (unique_id, status,
    failures), failures counting for tests only;
  * ls/list: the listing (stdout lines, in order; --output json lines as objects);
  * compile: every file under target/compiled/ (whitespace-normalised text);
  * then every schema of the database but the system ones, and in each every table,
    view, materialized view, partitioned and foreign table: its kind, its columns
    (name, format_type, not null) in order, its constraints (pg_get_constraintdef),
    with `observe: [indexes]` its indexes (pg_get_indexdef without the index's
    name: dbt-postgres names them with an md5 of the time), with `observe:
    [grants]` its table privileges of other roles than the current user
    (information_schema.role_table_grants), with `observe: [comments]` the
    comments on it and its columns, with `observe: [persistence]` whether it is
    unlogged, with `observe: [definitions]` a view's or materialized view's
    definition (pg_get_viewdef, whitespace collapsed), and its rows as a multiset (every column cast to text) — except a foreign key
    dbt's `drop … cascade` lost and ours carried over (forgive_carried_foreign_keys).

With `observe: [packages]`, after each step: packages.yml, dependencies.yml and
package-lock.yml (parsed YAML; with a `tarball:` entry, without its sha1_hash, which
covers the rendered URL and so the port of each tool's stand-in Hub) and the installed packages (every file under
dbt_packages/, links followed: its path and a hash of its content). With `hub:
true`, each tool's run gets an HTTP server on a free loopback port serving the
files of `hub/` in its work directory (which `shell:` steps fill: the Hub's
`api/v1/…` JSON and the tarballs); DBT_PACKAGE_HUB_URL points at it for both tools
and the shell steps.

`run_with` hands a relation over from one tool to the other (a snapshot dbt started,
continued by ours, and the reverse): the step runs with the named tool in both
databases, so "dbt's" database saw our binary at that step (its cache key then
includes the binary's hash). `clock_columns` names, per relation, the columns whose
values come from the clock (a snapshot's `dbt_valid_to` of a deleted key, every
meta column of a `check` snapshot without `updated_at`, `dbt_scd_id` hashed from
them): in each tool's observation their timestamps are replaced by their rank among
the relation's clock values (`t1` < `t2` …, equal stays equal) and their hashes by
an id in the order of the rows, and the rows breaking `valid_from < valid_to` are
counted in both; the rest of the row is compared as is.

dbt is slow, so what dbt did is cached per fixture in
$RELUVIA_DBT_CACHE/results/<key>.json (default /var/tmp/reluvia-dbt-cache), the key
a hash of the fixture's files, the dbt versions, the PostgreSQL major version and
FORMAT_VERSION below; on a hit dbt is not run at all. `--refresh` ignores the cache.
Our binary always runs. A `pending` fixture runs both tools (filling the cache) but
reports "pending" instead of failing, and says so when it would pass.

Run with the venv's python (tests/dbt/run.sh does): psycopg2 and PyYAML come with
dbt-postgres. Needs RELUVIA_TEST_PGHOST/PORT/USER (tests/pg.sh). The binary is
$RELUVIA_BIN, else $CARGO_TARGET_DIR/release/reluvia-transform, else
./target/release/reluvia-transform.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import importlib.metadata
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg2
import psycopg2.extensions
import yaml
from psycopg2 import sql as pgsql

# Bump when what is observed or how it is stored changes: it is part of the cache key,
# so old cached dbt results are not compared in a new format.
FORMAT_VERSION = 3

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FIXTURES = HERE / "fixtures"
RESULT_COMMANDS = {"run", "build", "test", "seed", "snapshot"}
LS_COMMANDS = {"ls", "list"}
TARGET_SCHEMA = "analytics"
THREADS = 4
COMMAND_TIMEOUT = 600
# Files of a fixture that are not part of it (left behind by running dbt by hand).
IGNORED_PARTS = {"target", "logs", "dbt_packages", "__pycache__", ".user.yml"}

# Environment that must not leak into either tool from the caller's shell.
LEAKY_ENV = re.compile(r"^(DBT_|PG|RELUVIA_TRANSFORM_|PG_ANALYTICS_|MELTANO_)")


# ----------------------------------------------------------------- small helpers
def fixture_files(fixture: Path) -> list[Path]:
    """Every file of a fixture, sorted by relative path."""
    out = []
    for p in fixture.rglob("*"):
        rel = p.relative_to(fixture)
        if p.is_file() and not (set(rel.parts) & IGNORED_PARTS):
            out.append(rel)
    return sorted(out, key=lambda r: r.as_posix())


def dbt_versions() -> dict:
    return {
        pkg: importlib.metadata.version(pkg)
        for pkg in ("dbt-core", "dbt-postgres", "dbt-adapters", "dbt-common")
    }


def cache_key(fixture: Path, versions: dict, pg_major: str, bin_path: str | None = None) -> str:
    h = hashlib.sha256()
    if bin_path:  # a step of dbt's observation runs our binary
        h.update(hashlib.sha256(Path(bin_path).read_bytes()).hexdigest().encode() + b"\n")
    h.update(f"format {FORMAT_VERSION}\n".encode())
    h.update(json.dumps(versions, sort_keys=True).encode() + b"\n")
    h.update(f"postgres {pg_major}\n".encode())
    for rel in fixture_files(fixture):
        data = (fixture / rel).read_bytes()
        h.update(f"{rel.as_posix()}\0{len(data)}\0".encode())
        h.update(data)
    return f"{fixture.name}-{h.hexdigest()[:24]}"


def tail(text: str, n: int = 40) -> str:
    return "\n".join(text.splitlines()[-n:])


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not LEAKY_ENV.match(k)}
    env["NO_COLOR"] = "1"
    return env


class Pg:
    """Admin connection facts (tests/pg.sh exports them)."""

    def __init__(self):
        try:
            self.host = os.environ["RELUVIA_TEST_PGHOST"]
            self.port = int(os.environ["RELUVIA_TEST_PGPORT"])
            self.user = os.environ["RELUVIA_TEST_PGUSER"]
        except KeyError as e:
            sys.exit(f"difftest: {e.args[0]} is not set (source tests/pg.sh, or run tests/dbt/run.sh)")

    def connect(self, dbname: str):
        conn = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, dbname=dbname,
            options="-c TimeZone=UTC -c client_min_messages=warning",
            application_name="reluvia-dbt-difftest",
        )
        conn.autocommit = True
        return conn

    def admin(self, statement: str):
        conn = self.connect("postgres")
        try:
            conn.cursor().execute(statement)
        finally:
            conn.close()

    def major(self) -> str:
        conn = self.connect("postgres")
        try:
            cur = conn.cursor()
            cur.execute("show server_version_num")
            return str(int(cur.fetchone()[0]) // 10000)
        finally:
            conn.close()


# ----------------------------------------------------------------- observation
def dump_database(conn, observe=()) -> dict:
    """Schemas and every relation of the non-system schemas: kind, columns,
    constraints, rows (a sorted multiset of text tuples); `observe` adds
    "indexes" (their definitions without their names), "grants", "comments",
    "persistence" and "definitions" (of views and materialized views)."""
    cur = conn.cursor()
    cur.execute(
        """select nspname from pg_namespace
           where nspname not in ('information_schema', 'public')
             and nspname not like 'pg\\_%'
           order by 1"""
    )
    schemas = [r[0] for r in cur.fetchall()]
    cur.execute(
        """select n.nspname, c.relname, c.relkind::text, c.oid
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
           where c.relkind in ('r', 'v', 'm', 'p', 'f')
             and n.nspname not in ('information_schema')
             and n.nspname not like 'pg\\_%'
           order by 1, 2"""
    )
    kinds = {"r": "table", "v": "view", "m": "materialized view", "p": "partitioned table",
             "f": "foreign table"}
    relations = {}
    for schema, name, kind, oid in cur.fetchall():
        cur.execute(
            """select attname, format_type(atttypid, atttypmod), attnotnull
               from pg_attribute where attrelid = %s and attnum > 0 and not attisdropped
               order by attnum""",
            (oid,),
        )
        columns = [list(r) for r in cur.fetchall()]
        # Constraint names are not compared: PostgreSQL derives them from the name the
        # relation had when it was created (dbt builds `x__dbt_tmp` then renames it).
        cur.execute(
            "select contype::text, pg_get_constraintdef(oid) from pg_constraint where conrelid = %s order by 1, 2",
            (oid,),
        )
        constraints = [f"{t}: {d}" for t, d in cur.fetchall()]
        extra = {}
        if "indexes" in observe:
            cur.execute(
                """select regexp_replace(pg_get_indexdef(indexrelid), 'INDEX \\S+ ON ', 'INDEX ON ')
                   from pg_index where indrelid = %s order by 1""",
                (oid,),
            )
            extra["indexes"] = [r[0] for r in cur.fetchall()]
        if "grants" in observe and kind == "m":
            # information_schema leaves materialized views out: the same from the ACL.
            cur.execute(
                """select g.rolname || ': ' || a.privilege_type
                   from pg_class c cross join lateral aclexplode(c.relacl) a
                   join pg_roles g on g.oid = a.grantee
                   where c.oid = %s and g.rolname <> current_user
                   order by 1""",
                (oid,),
            )
            extra["grants"] = [r[0] for r in cur.fetchall()]
        elif "grants" in observe:
            cur.execute(
                """select grantee || ': ' || privilege_type from information_schema.role_table_grants
                   where table_schema = %s and table_name = %s and grantee <> current_user
                   order by 1""",
                (schema, name),
            )
            extra["grants"] = [r[0] for r in cur.fetchall()]
        if "comments" in observe:
            cur.execute(
                """select coalesce(a.attname::text, '(relation)') || ': ' || d.description
                   from pg_description d
                   left join pg_attribute a on a.attrelid = d.objoid and a.attnum = d.objsubid
                   where d.objoid = %s and d.classoid = 'pg_class'::regclass
                   order by d.objsubid""",
                (oid,),
            )
            extra["comments"] = [r[0] for r in cur.fetchall()]
        if "persistence" in observe:
            cur.execute("select relpersistence::text from pg_class where oid = %s", (oid,))
            extra["persistence"] = {"p": "permanent", "u": "unlogged", "t": "temporary"}[cur.fetchone()[0]]
        if "definitions" in observe and kind in ("v", "m"):
            cur.execute("select pg_get_viewdef(%s)", (oid,))
            extra["definition"] = " ".join(cur.fetchone()[0].split())
        rows = None
        error = None
        if columns:
            q = pgsql.SQL("select {} from {}.{}").format(
                pgsql.SQL(", ").join(pgsql.SQL("{}::text").format(pgsql.Identifier(c[0])) for c in columns),
                pgsql.Identifier(schema), pgsql.Identifier(name),
            )
            try:
                cur.execute(q)
                rows = sorted((list(r) for r in cur.fetchall()), key=row_key)
            except psycopg2.Error as e:  # a view that no longer works
                error = str(e).strip().splitlines()[0]
        relations[f"{schema}.{name}"] = {
            "kind": kinds[kind], "columns": columns, "constraints": constraints,
            "rows": rows, "error": error, **extra,
        }
    return {"schemas": schemas, "relations": relations}


def row_key(row):
    return [(v is None, v or "") for v in row]


def read_run_results(target: Path):
    p = target / "run_results.json"
    if not p.exists():
        return None
    data = json.loads(p.read_text())
    out = []
    for r in data.get("results", []):
        uid = r["unique_id"]
        # `failures` is compared for tests only: dbt writes null for models and seeds.
        failures = r.get("failures") if uid.startswith("test.") else None
        # Not compared (they legitimately differ): `message` (free text, adapter
        # responses), `timing`, `execution_time`, `thread_id`, `adapter_response`,
        # `compiled_code`, `relation_name`, `batch_results`, and the top-level
        # `metadata` (invocation id, generated_at, versions), `elapsed_time`, `args`.
        out.append([uid, r["status"], failures])
    return sorted(out)


def read_compiled(target: Path, database: str) -> dict:
    out = {}
    root = target / "compiled"
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[p.relative_to(root).as_posix()] = normalise_sql(p.read_text(), database)
    return out


def normalise_sql(text: str, database: str) -> str:
    # Whitespace layout is not compared (Jinja whitespace is cosmetic); the database
    # name is each tool's own (see normalise_db).
    return " ".join(text.replace(database, "{database}").split())


def stdout_lines(stdout: str) -> list[str]:
    """A command's result on stdout, line by line with whitespace runs collapsed;
    a JSON document (`compile --output json`) with its strings' whitespace
    collapsed too (compiled SQL is compared that way everywhere)."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        doc = {k: " ".join(v.split()) if isinstance(v, str) else v for k, v in doc.items()}
        stdout = json.dumps(doc, indent=2)
    return [" ".join(l.split()) for l in stdout.splitlines() if l.strip()]


def normalise_db(value, database: str):
    """Each tool builds in its own database, so its name is replaced by `{database}`
    wherever it shows (compiled SQL, ls --output json, rows that print `this`)."""
    if isinstance(value, str):
        return value.replace(database, "{database}")
    if isinstance(value, list):
        return [normalise_db(v, database) for v in value]
    if isinstance(value, dict):
        return {normalise_db(k, database): normalise_db(v, database) for k, v in value.items()}
    return value


class Tool:
    def __init__(self, name: str, argv0: list[str], ls_extra: list[str], env: dict):
        self.name = name
        self.argv0 = argv0
        self.ls_extra = ls_extra
        self.env = env


def write_profiles(path: Path, profile: str, pg: Pg, database: str):
    profiles = {
        profile: {
            "target": "dev",
            "outputs": {
                "dev": {
                    "type": "postgres", "host": pg.host, "port": pg.port, "user": pg.user,
                    # trust authentication: dbt-postgres insists on a password key.
                    "password": "unused", "dbname": database, "schema": TARGET_SCHEMA,
                    "threads": THREADS,
                }
            },
        }
    }
    (path / "profiles.yml").write_text(yaml.safe_dump(profiles, sort_keys=False))


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve_hub(root: Path):
    """A stand-in dbt Hub: `root`'s files over HTTP on a free loopback port."""
    root.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def observe_packages(project: Path) -> dict:
    """The package declarations, the lock file and the installed tree."""
    out = {}
    for name in ("packages.yml", "dependencies.yml", "package-lock.yml"):
        p = project / name
        out[name] = yaml.safe_load(p.read_text()) if p.exists() else None
    lock = out["package-lock.yml"]
    if isinstance(lock, dict) and any("tarball" in e for e in lock.get("packages") or []):
        # Its hash covers the rendered tarball URL, and each tool's stand-in Hub
        # has its own port.
        lock["sha1_hash"] = "(covers the Hub's port)"
    installed = []
    base = project / "dbt_packages"
    if base.exists():
        for dirpath, _dirs, files in os.walk(base, followlinks=True):
            for f in files:
                p = Path(dirpath) / f
                installed.append(f"{p.relative_to(base).as_posix()} {hashlib.sha1(p.read_bytes()).hexdigest()[:12]}")
    out["installed"] = sorted(installed)
    return {"packages": out}


def observe(tool: Tool, fixture: Path, scenario: dict, pg: Pg, work: Path, log, tools: dict) -> dict:
    """Runs the scenario with one tool in a fresh database (a step with `run_with`
    with that tool of `tools`); returns what it saw."""
    owner = tool
    database = f"rdiff_{fixture.name[:20]}_{tool.name}_{os.getpid()}_{secrets.token_hex(3)}"
    wdir = work / tool.name
    project = wdir / "project"
    for rel in fixture_files(fixture / "project"):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fixture / "project" / rel, project / rel)
    project.mkdir(parents=True, exist_ok=True)
    profile = (yaml.safe_load((project / "dbt_project.yml").read_text()) or {}).get("profile", "default")
    (wdir / "profiles").mkdir()
    write_profiles(wdir / "profiles", profile, pg, database)
    pg.admin(f'create database "{database}"')
    steps_out = []
    hub, extra_env = None, {}
    if scenario.get("hub"):
        hub, url = serve_hub(wdir / "hub")
        extra_env = {"DBT_PACKAGE_HUB_URL": url}
    try:
        conn = pg.connect(database)
        try:
            if scenario.get("setup"):
                conn.cursor().execute(scenario["setup"])
            for i, step in enumerate(scenario["steps"], 1):
                if step.get("sql"):
                    conn.cursor().execute(step["sql"])
                for rel, content in (step.get("files") or {}).items():
                    path = project / rel
                    if content is None:
                        path.unlink(missing_ok=True)
                    else:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_text(content)
                if step.get("shell"):
                    # Files a step needs outside the project (a git repository of a
                    # package): bash in the tool's work directory, above project/.
                    subprocess.run(["bash", "-euc", step["shell"]], cwd=wdir, check=True,
                                   capture_output=True, timeout=COMMAND_TIMEOUT,
                                   env={**os.environ, **extra_env})
                command = [str(c) for c in step["command"]]
                tool = tools[step["run_with"]] if step.get("run_with") else owner
                target = project / "target"
                if command[0] != "retry":  # retry reads the last run_results.json
                    (target / "run_results.json").unlink(missing_ok=True)
                for stale in ("compiled", "run"):
                    shutil.rmtree(target / stale, ignore_errors=True)
                argv = tool.argv0 + command + ["--project-dir", str(project),
                                               "--profiles-dir", str(wdir / "profiles")]
                if command[0] in LS_COMMANDS or step.get("stdout"):
                    argv += tool.ls_extra
                started = time.monotonic()
                try:
                    proc = subprocess.run(argv, cwd=wdir, env={**tool.env, **extra_env}, capture_output=True, text=True,
                                          timeout=COMMAND_TIMEOUT)
                    code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
                except subprocess.TimeoutExpired as e:
                    code, stdout, stderr = "timeout", str(e.stdout or ""), str(e.stderr or "")
                took = time.monotonic() - started
                log(f"    {owner.name}: step {i} `{' '.join(command)}` by {tool.name}: exit {code} ({took:.1f}s)")
                (wdir / f"step{i}.stdout").write_text(stdout)
                (wdir / f"step{i}.stderr").write_text(stderr)
                obs = {"command": command, "exit_code": code,
                       "stdout_tail": tail(stdout), "stderr_tail": tail(stderr)}
                if command[0] in RESULT_COMMANDS:
                    obs["results"] = read_run_results(target)
                if command[0] in LS_COMMANDS:
                    obs["ls"] = [l for l in stdout.splitlines() if l.strip()]
                if command[0] == "compile":
                    obs["compiled"] = read_compiled(target, database)
                if step.get("stdout"):
                    # What a command prints as its result (`compile -s x`: the SQL),
                    # dbt run with --quiet; whitespace-normalised, line by line.
                    obs["stdout"] = stdout_lines(stdout)
                obs.update(dump_database(conn, scenario.get("observe") or ()))
                if "packages" in (scenario.get("observe") or ()):
                    obs.update(observe_packages(project))
                steps_out.append(normalise_db(obs, database))
                if step.get("save_state"):
                    # The artifacts of this step, for a later `--state <dir>`
                    # (relative to the project directory, as dbt reads it).
                    dest = project / step["save_state"]
                    shutil.rmtree(dest, ignore_errors=True)
                    dest.mkdir(parents=True)
                    for name in ("manifest.json", "run_results.json"):
                        if (target / name).exists():
                            shutil.copyfile(target / name, dest / name)
        finally:
            conn.close()
    finally:
        if hub:
            hub.shutdown()
        pg.admin(f'drop database if exists "{database}" with (force)')
    return {"steps": steps_out}


# ----------------------------------------------------------------- comparison
def parse_json_lines(lines):
    out = []
    for l in lines:
        try:
            out.append(json.loads(l))
        except ValueError:
            out.append({"<not json>": l})
    return out


def fmt(v) -> str:
    return json.dumps(v, sort_keys=True)


def diff_json(a, b, path="") -> list[str]:
    """Leaf differences between two JSON values, as `path: dbt X, ours Y`."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            p = f"{path}.{k}" if path else k
            if k not in b:
                out.append(f"{p}: only dbt has it ({fmt(a[k])})")
            elif k not in a:
                out.append(f"{p}: only ours has it ({fmt(b[k])})")
            else:
                out += diff_json(a[k], b[k], p)
        return out
    if a != b:
        return [f"{path or 'value'}: dbt {fmt(a)}, ours {fmt(b)}"]
    return []


def compare_lists(what: str, a: list, b: list, limit: int = 8) -> list[str]:
    if a == b:
        return []
    if sorted(a, key=fmt) == sorted(b, key=fmt):
        return [f"{what}: the same {len(a)} lines in another order\n"
                + "\n".join(f"        dbt:  {x}\n        ours: {y}" for x, y in list(zip(a, b))[:limit] if x != y)]
    only_a = [x for x in a if x not in b]
    only_b = [x for x in b if x not in a]
    msg = [f"{what}: {len(a)} lines from dbt, {len(b)} from ours"]
    msg += [f"        only dbt:  {x}" for x in only_a[:limit]]
    msg += [f"        only ours: {x}" for x in only_b[:limit]]
    if len(only_a) > limit or len(only_b) > limit:
        msg.append("        …")
    return ["\n".join(msg)]


def compare_ls(a: list[str], b: list[str], command: list[str]) -> list[str]:
    if "json" in command:
        ja, jb = parse_json_lines(a), parse_json_lines(b)
        ida = [x.get("unique_id") for x in ja]
        idb = [x.get("unique_id") for x in jb]
        out = compare_lists("ls unique_ids", ida, idb)
        by_b = {x.get("unique_id"): x for x in jb}
        # Field differences grouped by field across the listed nodes (a missing config
        # key is usually missing from every node), with the first node as example.
        groups: dict[str, list] = {}
        for x in ja:
            y = by_b.get(x.get("unique_id"))
            if y is not None:
                for d in diff_json(x, y):
                    field, _, rest = d.partition(": ")
                    kind = rest.split(" (")[0] if rest.startswith("only") else "differs"
                    groups.setdefault(f"{field}: {kind}", []).append((x.get("unique_id"), rest))
        if groups:
            details = []
            for g, items in groups.items():
                uid, example = items[0]
                if example.startswith("only"):
                    example = example.split(" (", 1)[1][:-1] if " (" in example else example
                details.append(f"        {g}, in {len(items)} node(s), e.g. {uid}: {example}")
            out.append(f"ls json objects differ ({len(groups)} fields):\n" + "\n".join(details))
        return out
    return compare_lists("ls output", a, b)


def compare_rows(a: list, b: list, limit: int = 5) -> str | None:
    if a == b:
        return None
    from collections import Counter
    ca, cb = Counter(map(tuple, a)), Counter(map(tuple, b))
    only_a = sorted((ca - cb).elements(), key=row_key)
    only_b = sorted((cb - ca).elements(), key=row_key)
    msg = [f"rows: dbt {len(a)}, ours {len(b)}; {len(only_a)} only in dbt, {len(only_b)} only in ours"]
    msg += [f"          only dbt:  {fmt(list(r))}" for r in only_a[:limit]]
    msg += [f"          only ours: {fmt(list(r))}" for r in only_b[:limit]]
    return "\n".join(msg)


TEST_HASH = re.compile(r"^(test\.[^.]+\.[^.]+)\.[0-9a-f]{10}$")


def strip_test_hashes(obs: dict) -> dict:
    """`test.<package>.<name>.<hash>` → `test.<package>.<name>.#`, in run results and
    ls --output json. The 10-hex suffix is dbt's hash of the test's definition
    (NOTES.md); the `test_names` fixture compares it (`compare_test_hashes: true`),
    the other fixtures match tests by package and name so that their findings are
    about what the tests did, not about one id scheme."""
    def fix(uid):
        return TEST_HASH.sub(r"\1.#", uid) if isinstance(uid, str) else uid
    obs = dict(obs)
    if obs.get("results") is not None:
        obs["results"] = sorted([fix(r[0])] + r[1:] for r in obs["results"])
    if obs.get("ls") is not None and "json" in obs["command"]:
        lines = []
        for l in obs["ls"]:
            try:
                o = json.loads(l)
                o["unique_id"] = fix(o.get("unique_id"))
                lines.append(json.dumps(o))
            except ValueError:
                lines.append(l)
        obs["ls"] = lines
    return obs


def forgive_carried_foreign_keys(dbt_steps: list, our_steps: list, log) -> list:
    """The one deliberate difference in the database (README "Safe refreshes"): dbt
    rebuilds a table with `drop … cascade`, which silently drops every foreign key
    of another table that references it; our swap carries such a key over to the
    new table (re-validated). So once dbt rebuilt a referenced table while the
    referencing one was not rebuilt after it (it failed, or was not selected), dbt's
    referencing table has lost a foreign key that ours kept.

    Forgiven, narrowly: a foreign key (`f: …`) of a relation that both tools had
    in the previous step, that dbt no longer has and ours still has, is removed
    from our observation of this step, and of the following ones for as long as
    dbt still lacks it and ours still has it. Any other constraint, any foreign key
    ours lost, gained or changed, is still a difference. Returns our steps with
    those keys removed (copies; the originals are untouched)."""
    out = []
    carried: dict[str, set] = {}  # relation -> foreign keys dbt's cascade dropped
    prev_a = prev_b = None
    for i, (a, b) in enumerate(zip(dbt_steps, our_steps), 1):
        b = dict(b, relations=dict(b["relations"]))
        for rel, y in list(b["relations"].items()):
            x = a["relations"].get(rel)
            if x is None:
                carried.pop(rel, None)
                continue
            ours, theirs = set(y["constraints"]), set(x["constraints"])
            keep = {c for c in carried.get(rel, set()) if c in ours and c not in theirs}
            if prev_a is not None and prev_b is not None:
                before_a = set((prev_a["relations"].get(rel) or {}).get("constraints") or [])
                before_b = set((prev_b["relations"].get(rel) or {}).get("constraints") or [])
                keep |= {c for c in before_a & before_b
                         if c.startswith("f: ") and c not in theirs and c in ours}
            if keep:
                carried[rel] = keep
                log(f"    step {i}: {rel}: foreign key kept by ours, dropped by dbt's cascade "
                    f"(forgiven): {', '.join(sorted(keep))}")
                b["relations"][rel] = dict(y, constraints=[c for c in y["constraints"] if c not in keep])
            else:
                carried.pop(rel, None)
        out.append(b)
        prev_a, prev_b = a, our_steps[i - 1]
    return out


HASH = re.compile(r"^[0-9a-f]{32}$")


def normalise_clock(steps: list, clock: dict) -> tuple[list, list[str]]:
    """Each step with the `clock_columns` of its relations normalised (see the
    module documentation), and per step and relation how many rows break
    `valid_from < valid_to` (dbt's do where it mixes the source's and the wall
    clock: a deletion record stamped now, closed by a re-inserted row's older
    `updated_at`; the counts must be the same)."""
    out, problems = [], []
    for i, step in enumerate(steps, 1):
        step = json.loads(json.dumps(step))
        for rel, cols in clock.items():
            r = (step.get("relations") or {}).get(rel)
            if not r or not r.get("rows"):
                continue
            names = [c[0] for c in r["columns"]]
            idx = [names.index(c) for c in cols if c in names]
            vf = next((k for k, n in enumerate(names) if n.endswith("valid_from")), None)
            vt = next((k for k, n in enumerate(names) if n.endswith("valid_to")), None)
            rows = r["rows"]
            bad = [row for row in rows if vf is not None and vt is not None
                   and row[vf] is not None and row[vt] is not None and not row[vf] < row[vt]]
            if bad:
                problems.append(f"step {i}: {rel}: {len(bad)} rows whose valid_from is not before their valid_to")
            stamps = sorted({row[k] for row in rows for k in idx if row[k] is not None and not HASH.match(row[k])})
            rank = {v: f"t{n}" for n, v in enumerate(stamps, 1)}
            for row in rows:
                for k in idx:
                    if row[k] is not None and not HASH.match(row[k]):
                        row[k] = rank[row[k]]
            hashed = [k for k in idx if any(row[k] is not None and HASH.match(row[k]) for row in rows)]
            if hashed:
                rest = lambda row: row_key([v for k, v in enumerate(row) if k not in hashed])
                ids = {}
                for row in sorted(rows, key=rest):
                    for k in hashed:
                        if row[k] is not None:
                            row[k] = ids.setdefault(row[k], f"h{len(ids) + 1}")
            r["rows"] = sorted(rows, key=row_key)
        out.append(step)
    return out, problems


def compare_step(a: dict, b: dict, test_hashes: bool = False) -> list[str]:
    if not test_hashes:
        a, b = strip_test_hashes(a), strip_test_hashes(b)
    out = []
    if a["exit_code"] != b["exit_code"]:
        out.append(f"exit code: dbt {a['exit_code']}, ours {b['exit_code']}")
    if "results" in a or "results" in b:
        ra, rb = a.get("results"), b.get("results")
        if ra is None or rb is None:
            if ra != rb:
                out.append(f"run_results.json: dbt {'none' if ra is None else f'{len(ra)} results'}, "
                           f"ours {'none' if rb is None else f'{len(rb)} results'}")
        if ra is not None or rb is not None:
            da = {r[0]: r[1:] for r in ra or []}
            db = {r[0]: r[1:] for r in rb or []}
            lines = []
            for uid in sorted(set(da) | set(db)):
                x, y = da.get(uid), db.get(uid)
                if x == y:
                    continue
                show = lambda v: "absent" if v is None else (v[0] if v[1] is None else f"{v[0]} (failures {v[1]})")
                lines.append(f"        {uid}: dbt {show(x)}, ours {show(y)}")
            if lines:
                out.append("run results differ:\n" + "\n".join(lines))
    if "ls" in a or "ls" in b:
        out += compare_ls(a.get("ls") or [], b.get("ls") or [], a["command"])
    if "stdout" in a or "stdout" in b:
        out += compare_lists("stdout", a.get("stdout") or [], b.get("stdout") or [])
    if "compiled" in a or "compiled" in b:
        ca, cb = a.get("compiled") or {}, b.get("compiled") or {}
        lines = []
        for p in sorted(set(ca) | set(cb)):
            if p not in cb:
                lines.append(f"        {p}: only dbt compiled it")
            elif p not in ca:
                lines.append(f"        {p}: only ours compiled it")
            elif ca[p] != cb[p]:
                lines.append(f"        {p}:\n          dbt:  {ca[p][:400]}\n          ours: {cb[p][:400]}")
        if lines:
            out.append("compiled SQL differs (whitespace-normalised):\n" + "\n".join(lines))
    if "packages" in a or "packages" in b:
        out += [f"packages: {d}" for d in diff_json(a.get("packages"), b.get("packages"))]
    sa, sb = set(a["schemas"]), set(b["schemas"])
    if sa != sb:
        out.append(f"schemas: only dbt has {sorted(sa - sb)}, only ours has {sorted(sb - sa)}")
    for rel in sorted(set(a["relations"]) | set(b["relations"])):
        x, y = a["relations"].get(rel), b["relations"].get(rel)
        if y is None:
            out.append(f"{rel}: only dbt has it ({x['kind']}, {len(x['rows'] or [])} rows)")
            continue
        if x is None:
            out.append(f"{rel}: only ours has it ({y['kind']}, {len(y['rows'] or [])} rows)")
            continue
        lines = []
        if x["kind"] != y["kind"]:
            lines.append(f"kind: dbt {x['kind']}, ours {y['kind']}")
        if x["columns"] != y["columns"]:
            show = lambda cols: ", ".join(f"{n} {t}{' not null' if nn else ''}" for n, t, nn in cols)
            lines.append(f"columns:\n          dbt:  {show(x['columns'])}\n          ours: {show(y['columns'])}")
        if x["constraints"] != y["constraints"]:
            lines.append(f"constraints: dbt {x['constraints']}, ours {y['constraints']}")
        for what in ("indexes", "grants", "comments", "persistence", "definition"):
            if x.get(what) != y.get(what):
                lines.append(f"{what}: dbt {x.get(what)}, ours {y.get(what)}")
        if x.get("error") != y.get("error"):
            lines.append(f"select error: dbt {x.get('error')!r}, ours {y.get('error')!r}")
        elif x["columns"] == y["columns"]:
            r = compare_rows(x["rows"] or [], y["rows"] or [])
            if r:
                lines.append(r)
        elif [c[0] for c in x["columns"]] == [c[0] for c in y["columns"]]:
            # same names, other types: the rows as text are still comparable
            r = compare_rows(x["rows"] or [], y["rows"] or [])
            if r:
                lines.append(r)
        if lines:
            out.append(f"{rel}:\n        " + "\n        ".join(lines))
    return out


# ----------------------------------------------------------------- the run
def run_fixture(fixture: Path, args, pg: Pg, versions: dict, pg_major: str, bin_path: str, cache: Path) -> dict:
    lines: list[str] = []
    log = (lambda m: lines.append(m)) if args.verbose else (lambda m: None)
    started = time.monotonic()
    try:
        scenario = yaml.safe_load((fixture / "steps.yml").read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        return {"name": fixture.name, "status": "error", "lines": [f"  steps.yml: {e}"], "seconds": 0}
    pending = scenario.get("pending")
    if not scenario.get("steps"):
        return {"name": fixture.name, "status": "error", "lines": ["  steps.yml has no steps"], "seconds": 0}
    runs_ours = any(s.get("run_with") == "ours" for s in scenario["steps"])
    key = cache_key(fixture, versions, pg_major, bin_path if runs_ours else None)
    cached = cache / "results" / f"{key}.json"
    work = Path(tempfile.mkdtemp(prefix=f"reluvia-dbt-diff-{fixture.name}-"))
    env = clean_env()
    status = "passed"
    dbt_env = dict(env)
    dbt_env.update({
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_VERSION_CHECK": "false",
        # Our binary runs every session with TimeZone=UTC (README, Settings);
        # dbt takes the server's default (Pacific/Chatham on tests/pg.sh's
        # cluster) unless libpq is told otherwise.
        "PGTZ": "UTC",
    })
    # `--quiet` so that dbt's stdout is the listing itself (ListCmdOut is
    # printed even when quiet); our binary logs on stderr only.
    dbt = Tool("dbt", [str(Path(sys.executable).parent / "dbt"), "--no-use-colors"], ["--quiet"], dbt_env)
    ours = Tool("ours", [bin_path], [], env)
    tools = {"dbt": dbt, "ours": ours}
    try:
        dbt_obs = None
        if cached.exists() and not args.refresh:
            dbt_obs = json.loads(cached.read_text())
            log(f"    dbt: cached ({cached})")
        else:
            dbt_obs = observe(dbt, fixture, scenario, pg, work, log, tools)
            dbt_obs["versions"] = versions
            problems = []
            for i, (step, obs) in enumerate(zip(scenario["steps"], dbt_obs["steps"]), 1):
                want = step.get("expect_exit")
                if want is not None and obs["exit_code"] != want:
                    problems.append(f"  step {i} `{' '.join(obs['command'])}`: dbt exited {obs['exit_code']}, "
                                    f"steps.yml expects {want}\n" + indent(obs["stdout_tail"], 6))
            if problems:
                return {"name": fixture.name, "status": "error", "seconds": time.monotonic() - started,
                        "lines": lines + ["  the fixture does not do what it says with dbt:"] + problems
                        + [f"  (dbt's project and outputs kept in {work})"]}
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(dbt_obs, indent=1))
            tmp.replace(cached)
        ours_obs = observe(ours, fixture, scenario, pg, work, log, tools)
        ours_steps = forgive_carried_foreign_keys(dbt_obs["steps"], ours_obs["steps"], log)
        clock = scenario.get("clock_columns") or {}
        dbt_steps, dbt_clock = normalise_clock(dbt_obs["steps"], clock)
        ours_steps, ours_clock = normalise_clock(ours_steps, clock)
        diffs = []
        if dbt_clock != ours_clock:
            diffs.append("  valid_from < valid_to is broken differently:")
            diffs += [f"    - dbt: {p}" for p in dbt_clock if p not in ours_clock]
            diffs += [f"    - ours: {p}" for p in ours_clock if p not in dbt_clock]
        for i, (step, a, b) in enumerate(zip(scenario["steps"], dbt_steps, ours_steps), 1):
            d = compare_step(a, b, bool(scenario.get("compare_test_hashes")))
            title = f"  step {i}{' (' + step['name'] + ')' if step.get('name') else ''}: `{' '.join(a['command'])}`"
            if d:
                diffs.append(title)
                diffs += [indent("- " + x, 4) for x in d]
                if args.verbose:
                    diffs.append(indent("dbt output (tail):\n" + indent(tail(a["stdout_tail"], 15), 2), 4))
                    diffs.append(indent("ours stderr (tail):\n" + indent(tail(b["stderr_tail"], 15), 2), 4))
            else:
                log(f"{title}: same")
        if pending:
            status = "pending"
            lines.append(f"  pending: {pending}")
            if diffs:
                n = sum(1 for d in diffs if d.startswith("    - "))
                lines.append(f"  ({n} differences today{'' if args.verbose else '; -v shows them'})")
                if args.verbose:
                    lines += diffs
            else:
                lines.append("  NOTE: our binary now matches dbt on this fixture: remove `pending` from steps.yml")
        elif diffs:
            status = "failed"
            lines += diffs
    except Exception as e:  # a broken runner or database: report, keep going
        import traceback
        status = "error"
        lines.append("  " + indent(traceback.format_exc(), 2).strip())
    # Both tools' project copies, stdout and stderr of every step: kept when asked
    # (RELUVIA_DBT_DIFF_KEEP=1), or on a failure seen with -v.
    keep = os.environ.get("RELUVIA_DBT_DIFF_KEEP") == "1" or (args.verbose and status in ("failed", "error"))
    if keep:
        lines.append(f"  (outputs of both tools kept in {work})")
    else:
        shutil.rmtree(work, ignore_errors=True)
        if status in ("failed", "error"):
            lines.append("  (-v or RELUVIA_DBT_DIFF_KEEP=1 keeps both tools' outputs)")
    return {"name": fixture.name, "status": status, "lines": lines, "seconds": time.monotonic() - started}


def indent(text: str, n: int) -> str:
    return "\n".join(" " * n + l for l in text.splitlines())


def binary_path() -> str:
    if os.environ.get("RELUVIA_BIN"):
        return os.environ["RELUVIA_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR")
    if target and (Path(target) / "release" / "reluvia-transform").exists():
        return str(Path(target) / "release" / "reluvia-transform")
    return str(REPO / "target" / "release" / "reluvia-transform")


def main() -> int:
    ap = argparse.ArgumentParser(description="dbt-core vs reluvia-transform on tests/dbt/fixtures")
    ap.add_argument("fixtures", nargs="*", help="fixture names (default: all)")
    ap.add_argument("-v", "--verbose", action="store_true", help="per-step details, and tool output on differences")
    ap.add_argument("--refresh", action="store_true", help="run dbt even when its results are cached")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="fixtures run at once (default 2)")
    args = ap.parse_args()

    all_fixtures = sorted(p for p in FIXTURES.iterdir() if (p / "steps.yml").exists())
    if args.fixtures:
        names = {p.name: p for p in all_fixtures}
        unknown = [n for n in args.fixtures if n not in names]
        if unknown:
            print(f"difftest: no fixture {', '.join(unknown)} (have: {', '.join(names)})", file=sys.stderr)
            return 2
        chosen = [names[n] for n in args.fixtures]
    else:
        chosen = all_fixtures
    bin_path = binary_path()
    if not os.access(bin_path, os.X_OK):
        print(f"difftest: no binary at {bin_path} (cargo build --release, or set RELUVIA_BIN)", file=sys.stderr)
        return 2
    pg = Pg()
    versions = dbt_versions()
    pg_major = pg.major()
    cache = Path(os.environ.get("RELUVIA_DBT_CACHE", "/var/tmp/reluvia-dbt-cache"))
    our_version = subprocess.run([bin_path, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"dbt-diff: dbt-core {versions['dbt-core']}, dbt-postgres {versions['dbt-postgres']}; "
          f"{our_version} ({bin_path}); PostgreSQL {pg_major} on {pg.host}:{pg.port}", flush=True)
    started = time.monotonic()
    counts = {"passed": 0, "failed": 0, "pending": 0, "error": 0}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        futures = [ex.submit(run_fixture, f, args, pg, versions, pg_major, bin_path, cache) for f in chosen]
        for fut in futures:
            r = fut.result()
            counts[r["status"]] += 1
            label = {"passed": "ok", "failed": "FAILED", "pending": "pending", "error": "ERROR"}[r["status"]]
            print(f"{r['name']}: {label} ({r['seconds']:.1f}s)", flush=True)
            for l in r["lines"]:
                print(l, flush=True)
    print(f"dbt-diff: {time.monotonic() - started:.1f}s; {counts['pending']} pending"
          + (f", {counts['error']} fixture errors" if counts["error"] else ""))
    failed = counts["failed"] + counts["error"]
    print(f"dbt-diff: {counts['passed']} passed, {failed} failed, {counts['pending']} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
