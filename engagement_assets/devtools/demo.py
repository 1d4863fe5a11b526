"""`engagement-demo`: the whole pipeline built so far, on the local default, with nothing to configure.

Generates sample data into the landing area when it has no telemetry yet, registers every landed drop and
every learner found as partitions of the persistent local instance, materializes each stage, and says
where the results are and how to look at them in the UI.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import dagster as dg

from engagement_assets.analysis.assets import audio_analysis
from engagement_assets.audio.assets import response_audio
from engagement_assets.devtools.conversation_demo import run_conversation_demo
from engagement_assets.devtools.runs import materialize_partition, materialize_partition_range
from engagement_assets.devtools.sample_data import generate_landing
from engagement_assets.engagement_pipeline import ASSETS
from engagement_assets.features.assets import phase_features, phase_level_engagement
from engagement_assets.ingestion.assets import cleaned_telemetry, landed_drops
from engagement_assets.matching.assets import merged_responses
from engagement_assets.platform.partitions import register_partitions, telemetry_drops, users
from engagement_assets.platform.resources import build_resources
from engagement_assets.prediction.assets import PREDICTION_ASSETS, prediction_resource
from engagement_assets.prediction.settings import PredictionSettings
from engagement_assets.responses.assets import user_responses
from engagement_assets.responses.extract import learner_keys
from engagement_assets.retention.assets import recording_retention
from engagement_assets.settings import Settings
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
    ("HTML report", "reports/phase_level_engagement.html"),
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
    with dg.DagsterInstance.get() as instance:
        drops = landed_drops(landing)
        register_partitions(instance, telemetry_drops, drops)
        for drop in drops:
            result = materialize_partition(ASSETS, cleaned_telemetry, drop, instance, resources)
            _check(result, f"cleaned_telemetry [{drop}]")
        learners = learner_keys(open_store(settings.storage_url))
        register_partitions(instance, users, learners)
        stages = _per_learner_stages(settings)
        if learners:
            result = materialize_partition_range(
                ASSETS, stages, learners[0], learners[-1], instance, resources
            )
            _check(
                result,
                f"{', '.join(stage.key.to_user_string() for stage in stages)} [{len(learners)} learners]",
            )
        if learners:
            result = materialize_partition(ASSETS, phase_level_engagement, None, instance, resources)
            _check(result, "phase_level_engagement")
            result = materialize_partition(
                [*ASSETS, *PREDICTION_ASSETS], PREDICTION_ASSETS, None, instance, prediction_resources
            )
            _check(result, "prediction")
        if not args.skip_conversations:
            run_conversation_demo(instance, settings, seed=args.seed)

    _report(settings, home, drops, learners)
    return 0


def _per_learner_stages(settings: Settings) -> list:
    """Every per-learner stage; with imported analysis no recording is downloaded (or retained)."""
    if settings.resolved_analyzer == "import":
        return [user_responses, merged_responses, audio_analysis, phase_features]
    return [
        user_responses,
        merged_responses,
        response_audio,
        audio_analysis,
        recording_retention,
        phase_features,
    ]


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


def _check(result, what: str) -> None:
    if not result.success:
        sys.exit(f"{what} failed; see the run in the UI")
    print(f"  materialized {what}")


def _report(settings: Settings, home: Path, drops: list[str], learners: list[str]) -> None:
    warehouse = open_store(settings.storage_url)
    print(f"\nDone: {len(drops)} telemetry drop(s), {len(learners)} learner(s). Results:")
    for label, key in OUTPUTS:
        if warehouse.list_files(key):
            print(f"  {label:<22} {warehouse.uri(key)}")
    print(
        f"Open the UI on this instance with:\n  DAGSTER_HOME={home} dagster dev -m engagement_assets.definitions"
    )


if __name__ == "__main__":
    sys.exit(main())
