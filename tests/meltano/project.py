"""Adds the extract/load side of the end-to-end test to a fresh Meltano project.

Usage (with the Python of the Meltano virtual environment, which has PyYAML):

    python project.py MELTANO_PROJECT_DIR REPO_DIR

Adds to MELTANO_PROJECT_DIR/meltano.yml:

- `tap-jsonl` (from PyPI) and, inheriting from it, one extractor per raw table,
  `jsonl-<source>-<table>`: tap-jsonl reads one stream per instance. Each reads
  tests/meltano/fixtures/<schema>.<table>.jsonl, with Meltano's `schema:` extra set to
  the table's Singer schema (schemas/raw/<schema>.<table>.json) so that the landed
  column types are those of docs/raw-contract.md, its key properties as primary key, and a
  stream map that drops the file-bookkeeping columns tap-jsonl adds.
- `target-postgres` exactly as the repository's meltano.yml declares it (PGTZ=UTC,
  upsert, record metadata, default_target_schema from each extractor's load_schema).

Prints the extractor names, one per line, in load order.
"""

import json
import sys
from pathlib import Path

import yaml

TAP_JSONL = {
    "name": "tap-jsonl",
    "namespace": "tap_jsonl",
    "pip_url": "tap-jsonl==0.3.1",
    "executable": "tap-jsonl",
    "capabilities": ["catalog", "discover", "state", "about", "stream-maps"],
    "settings": [
        {"name": "path", "description": "Glob pattern of the JSONL files."},
        {"name": "stream_name", "description": "Name of the stream."},
        {"name": "primary_keys", "kind": "array", "description": "Key properties."},
        {"name": "stream_maps", "kind": "object", "description": "SDK stream maps."},
    ],
}

# Columns tap-jsonl adds to every record; not part of the raw contract.
TAP_JSONL_COLUMNS = ["_sdc_last_modified", "_sdc_filename", "_sdc_stream"]


def main() -> None:
    project, repo = Path(sys.argv[1]), Path(sys.argv[2])
    meltano_yml = project / "meltano.yml"
    doc = yaml.safe_load(meltano_yml.read_text())
    shipped = yaml.safe_load((repo / "meltano.yml").read_text())

    extractors = [TAP_JSONL]
    names = []
    for schema_file in sorted((repo / "schemas" / "raw").glob("*.json")):
        message = json.loads(schema_file.read_text())
        raw_schema, table = schema_file.stem.split(".")
        fixture = repo / "tests" / "meltano" / "fixtures" / f"{schema_file.stem}.jsonl"
        if not fixture.is_file():
            sys.exit(f"project.py: missing fixture {fixture}")
        stream = message["stream"]
        name = f"jsonl-{raw_schema.removeprefix('raw_')}-{table}"
        names.append(name)
        extractors.append(
            {
                "name": name,
                "inherit_from": "tap-jsonl",
                "config": {
                    "path": str(fixture),
                    "stream_name": stream,
                    "primary_keys": message["key_properties"],
                    "stream_maps": {stream: {c: "__NULL__" for c in TAP_JSONL_COLUMNS}},
                },
                # Every run sends the whole file, like a full-table sync.
                "metadata": {stream: {"replication-method": "FULL_TABLE"}},
                "schema": {stream: message["schema"]["properties"]},
                "load_schema": raw_schema,
            }
        )

    loaders = [
        p for p in shipped["plugins"]["loaders"] if p["name"] == "target-postgres"
    ]
    if len(loaders) != 1:
        sys.exit("project.py: the repository's meltano.yml declares no target-postgres")

    plugins = doc.setdefault("plugins", {})
    plugins["extractors"] = extractors
    plugins["loaders"] = loaders
    meltano_yml.write_text(yaml.safe_dump(doc, sort_keys=False))
    print("\n".join(names))


if __name__ == "__main__":
    main()
