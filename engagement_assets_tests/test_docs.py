"""docs/storage.md lists every table asset's columns exactly as the asset declares them
(`UPDATE_DOCS=1 python3 -m pytest engagement_assets_tests/test_docs.py` rewrites the generated part)."""

from __future__ import annotations

import os
from pathlib import Path

from engagement_assets.definitions import defs
from engagement_assets.platform.metadata import declared_schema
from engagement_assets.storage.tables import schema_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "storage.md"
BEGIN = "<!-- columns: generated from the declared schemas, see engagement_assets_tests/test_docs.py -->"
END = "<!-- end of columns -->"


def generated_columns() -> str:
    sections = []
    for asset in defs.resolve_all_asset_specs():
        schema = declared_schema(asset.metadata)
        if schema is not None:
            sections.append(f"### `{asset.key.to_user_string()}`\n\n{schema_markdown(schema)}")
    return "\n\n".join(sorted(sections))


def test_the_storage_doc_lists_every_declared_schema():
    text = DOC.read_text()
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    expected = f"{head}{BEGIN}\n\n{generated_columns()}\n\n{END}{tail}"
    if os.environ.get("UPDATE_DOCS"):
        DOC.write_text(expected)
    assert text == expected, "docs/storage.md is out of date: run with UPDATE_DOCS=1"
