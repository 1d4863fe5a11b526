"""`engagement-demo`: the whole pipeline built so far, on the local default, with nothing to configure.

Generates sample data into the landing area when it has no telemetry yet, registers every landed drop and
every learner found as partitions of the persistent local instance, materializes each stage, and says
where the results are and how to look at them in the UI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from engagement_assets.audio.assets import response_audio
from engagement_assets.automation.sensors import DROP_REFRESH
from engagement_assets.cohorts.assets import COHORT_ASSETS
from engagement_assets.dashboard.assets import DASHBOARD_ASSETS
from engagement_assets.devtools.conversation_demo import run_conversation_demo
from engagement_assets.devtools.runs import QUIET, materialize_partition, materialize_partition_range
from engagement_assets.devtools.sample_data import generate_landing
from engagement_assets.engagement_pipeline import ASSETS
from engagement_assets.features.assets import phase_level_engagement
from engagement_assets.ingestion.assets import CLEANED, cleaned_telemetry, landed_drops
from engagement_assets.platform.partitions import register_partitions, telemetry_drops, users
from engagement_assets.platform.resources import build_resources
from engagement_assets.prediction.assets import PREDICTION_ASSETS, prediction_resource
from engagement_assets.prediction.settings import PredictionSettings
from engagement_assets.responses.extract import learner_keys
from engagement_assets.retention.assets import recording_retention
from engagement_assets.settings import Settings
from engagement_assets.storage import layout
from engagement_assets.storage.parquet import read_parquet
from engagement_assets.storage.store import LocalStore, open_store

SAMPLE_LEARNERS = 12
SAMPLE_SEED = 7
OUTPUTS = (
    ("cleaned telemetry", "cleaned_telemetry/"),
    ("learner responses", "user_responses/"),
    ("matched to lessons", "merged_responses/"),
    ("recordings (manifest)", "response_audio/"),
    ("recordings (audio)", "recordings/"),
    ("audio analysis", "audio_analysis/"),
    ("phase features", "phase_features/"),
    ("all-learner export", "exports/phase_level_engagement_full.csv"),
    ("dashboard (open in a browser)", "reports/engagement_dashboard.html"),
    ("learner profiles", "learner_profiles.parquet"),
    ("learner risk", "learner_risk.parquet"),
    ("engagement model card", "reports/engagement_model_card.md"),
    ("quarantined records", "quarantine/"),
    ("conversations (daily)", "conversations/year="),
    ("learner conversation analytics", "user_analytics.parquet"),
    ("conversation reports", "analytics_reports.parquet"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--learners", type=int, default=SAMPLE_LEARNERS, help="learners in generated sample data"
    )
    parser.add_argument("--seed", type=int, default=SAMPLE_SEED, help="seed of the generated sample data")
    parser.add_argument(
        "--skip-conversations", action="store_true", help="do not run the conversation-analytics group"
    )
    args = parser.parse_args(argv)

    home = _dagster_home()
    settings = Settings.from_env()
    landing = open_store(settings.landing_url)
    if not landed_drops(landing):
        _generate_sample_data(landing, args.learners, args.seed)

    resources = build_resources(settings)
    prediction_resources = {**resources, "prediction": prediction_resource(PredictionSettings.from_env())}
    story = Story(generated=_generated_learners(landing))
    with dg.DagsterInstance.get() as instance:
        drops = landed_drops(landing)
        register_partitions(instance, telemetry_drops, drops)
        for drop in drops:
            result = materialize_partition(ASSETS, cleaned_telemetry, drop, instance, resources, QUIET)
            story.cleaned(_check(result, f"cleaned_telemetry [{drop}]"))
        learners = learner_keys(open_store(settings.storage_url))
        register_partitions(instance, users, learners)
        stages = _per_learner_stages(settings)
        if learners:
            result = materialize_partition_range(
                ASSETS, stages, learners[0], learners[-1], instance, resources, QUIET
            )
            _check(result, f"the {len(stages)} per-learner stages for {len(learners)} learners in one run")
            result = materialize_partition(ASSETS, phase_level_engagement, None, instance, resources, QUIET)
            _check(result, "phase_level_engagement (export and report)")
            # Everything automation keeps up to date after the table, so a first `dagster dev` finds it done.
            built_on_table = [*PREDICTION_ASSETS, *COHORT_ASSETS, *DASHBOARD_ASSETS]
            result = materialize_partition(
                [*ASSETS, *built_on_table], built_on_table, None, instance, prediction_resources, QUIET
            )
            story.predicted(_check(result, "prediction, cohorts and the dashboard"))
        if not args.skip_conversations:
            run_conversation_demo(instance, settings, seed=args.seed)

    story.tell(open_store(settings.storage_url), len(drops), len(learners))
    _report(settings, home)
    return 0


def _per_learner_stages(settings: Settings) -> list:
    """Every per-learner stage, as a drop's refresh carries them; with imported analysis no recording is
    downloaded (or retained)."""
    if settings.resolved_analyzer == "import":
        return [stage for stage in DROP_REFRESH if stage not in (response_audio, recording_retention)]
    return list(DROP_REFRESH)


def _dagster_home() -> Path:
    """The persistent local instance: $DAGSTER_HOME, else this checkout (where dagster.yaml lives)."""
    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(
            Path.cwd() if Path("dagster.yaml").is_file() else Path(".dagster").resolve()
        )
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    return home


def _generate_sample_data(landing, learners: int, seed: int) -> None:
    if not isinstance(landing, LocalStore):
        sys.exit(f"no telemetry under {landing.uri('telemetry/')}; drop an export there first")
    print(f"Generating sample data for {learners} learners into {landing.url} ...")
    generate_landing(landing.root, learners=learners, seed=seed)


def _check(result, what: str):
    if not result.success:
        sys.exit(f"{what} failed; see the run in the UI")
    print(f"  materialized {what}")
    return result


def _generated_learners(landing) -> int | None:
    """How many learners the sample generator made (None for data that landed otherwise)."""
    key = "_generator_summary.json"
    if not landing.exists(key):
        return None
    return json.loads(landing.read_bytes(key))["arguments"]["learners"]


@dataclass
class Story:
    """What happened to the data, in numbers that add up, for the console."""

    generated: int | None
    records: int = 0
    kept: int = 0
    quarantined: int = 0
    model: str = "not run"
    scored: int = 0

    def cleaned(self, result) -> None:
        for metadata in _metadata(result, CLEANED):
            self.records += metadata["records"]
            self.kept += metadata["dagster/row_count"]
            self.quarantined += metadata.get("quarantined", 0)

    def predicted(self, result) -> None:
        (model,) = _metadata(result, dg.AssetKey("engagement_model"))
        self.model = model["status"] if model["status"] == "trained" else f"not trained ({model['reason']})"
        (risk,) = _metadata(result, dg.AssetKey("learner_risk"))
        self.scored = risk["learners"]

    def tell(self, warehouse, drops: int, learners: int) -> None:
        matched, responses, phases, with_phases = _matching_and_phases(warehouse)
        generated = f" of the {self.generated} generated" if self.generated else ""
        print(
            f"\nThe story: {drops} drop(s), {self.records:,} records read; {self.kept:,} scorable English "
            f"answers kept, {self.records - self.kept - self.quarantined:,} other events or duplicates set aside, "
            f"{self.quarantined:,} malformed records quarantined.\n"
            f"  {learners} learner(s){generated} have English answers (the others practised other languages "
            f"or answered nothing scorable).\n"
            f"  {responses:,} distinct answers ({self.kept - responses:,} were in more than one drop); "
            f"{matched:,} matched to a lesson row; {phases} practice phase(s) for "
            f"{with_phases} learner(s) in the report (a learner without lesson rows has no phases).\n"
            f"  Engagement model: {self.model}; {self.scored} learner(s) with an open phase given a risk."
        )


def _metadata(result, key: dg.AssetKey) -> list[dict]:
    return [
        {name: value.value for name, value in event.materialization.metadata.items()}
        for event in result.get_asset_materialization_events()
        if event.asset_key == key
    ]


def _matching_and_phases(warehouse) -> tuple[int, int, int, int]:
    merged = read_parquet(warehouse, layout.partition_file_keys(warehouse, "merged_responses"))
    phases = read_parquet(warehouse, [layout.table_file("phase_level_engagement")]).to_pandas()
    matched = merged.num_rows - merged.column("SessionId").null_count
    return matched, merged.num_rows, len(phases), phases["UserId"].nunique()


def _report(settings: Settings, home: Path) -> None:
    warehouse = open_store(settings.storage_url)
    print("\nResults:")
    for label, key in OUTPUTS:
        if warehouse.list_files(key):
            print(f"  {label:<22} {warehouse.uri(key)}")
    print(
        f"Open the UI on this instance with:\n  DAGSTER_HOME={home} dagster dev -m engagement_assets.definitions"
    )


if __name__ == "__main__":
    sys.exit(main())
