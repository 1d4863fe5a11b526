"""The generated parts of the documentation match what the code declares: docs/storage.md lists every
table asset's columns, and the configuration tables (README, docs/configuration.md) every setting, exactly
as declared (`UPDATE_DOCS=1 python3 -m pytest engagement_assets_tests/test_docs.py` rewrites them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engagement_assets.api.settings import ApiSettings
from engagement_assets.conversations.settings import ConversationSettings
from engagement_assets.definitions import defs
from engagement_assets.platform.metadata import declared_schema
from engagement_assets.prediction.settings import PredictionSettings
from engagement_assets.settings import Settings, settings_table
from engagement_assets.storage.tables import schema_markdown

ROOT = Path(__file__).resolve().parents[1]


def generated_columns() -> str:
    sections = []
    for asset in defs.resolve_all_asset_specs():
        schema = declared_schema(asset.metadata)
        if schema is not None:
            sections.append(f"### `{asset.key.to_user_string()}`\n\n{schema_markdown(schema)}")
    return "\n\n".join(sorted(sections))


GENERATED = {
    "columns": generated_columns,
    "settings": lambda: settings_table(Settings),
    "conversation settings": lambda: settings_table(ConversationSettings),
    "prediction settings": lambda: settings_table(PredictionSettings),
    "api settings": lambda: settings_table(ApiSettings),
}
PLACES = [
    ("docs/storage.md", "columns"),
    ("README.md", "settings"),
    ("README.md", "conversation settings"),
    ("docs/configuration.md", "settings"),
    ("docs/configuration.md", "conversation settings"),
    ("README.md", "prediction settings"),
    ("docs/configuration.md", "prediction settings"),
    ("docs/configuration.md", "api settings"),
    ("docs/api.md", "api settings"),
]


@pytest.mark.parametrize(("doc", "part"), PLACES)
def test_the_generated_part_of_the_docs_is_what_the_code_declares(doc, part):
    path = ROOT / doc
    begin = f"<!-- {part}: generated from the code, see engagement_assets_tests/test_docs.py -->"
    end = f"<!-- end of {part} -->"
    text = path.read_text()
    assert begin in text and end in text, f"{doc} has no generated {part}"
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    expected = f"{head}{begin}\n\n{GENERATED[part]()}\n\n{end}{tail}"
    if os.environ.get("UPDATE_DOCS"):
        path.write_text(expected)
    assert text == expected, f"{doc} is out of date: run with UPDATE_DOCS=1"
