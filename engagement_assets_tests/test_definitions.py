"""The code location loads, with the asset graph and partitioning the README describes."""

from __future__ import annotations

import dagster as dg

from engagement_assets.definitions import defs


def test_definitions_load_with_the_spec_asset_graph():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"telemetry_drop", "cleaned_telemetry", "user_responses"} <= keys
    cleaned = graph.get(dg.AssetKey("cleaned_telemetry"))
    assert cleaned.partitions_def.name == "telemetry_drops"
    assert graph.get(dg.AssetKey("user_responses")).partitions_def.name == "users"
    assert dg.AssetKey("telemetry_drop") in cleaned.parent_keys


def test_every_asset_explains_what_its_data_means():
    for spec in defs.resolve_all_asset_specs():
        assert spec.description and len(spec.description) > 40, spec.key
