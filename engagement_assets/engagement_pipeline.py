"""The engagement pipeline as Dagster definitions: the stages' assets with the batch size the settings
give the CPU stages, and the sensors that run them, looking as often as the settings say."""

from __future__ import annotations

import dagster as dg

from engagement_assets.analysis.assets import audio_analysis
from engagement_assets.audio.assets import response_audio
from engagement_assets.automation.sensors import build_sensors
from engagement_assets.features.assets import phase_features, phase_level_engagement
from engagement_assets.ingestion.assets import cleaned_telemetry, telemetry_drop
from engagement_assets.matching.assets import learner_sessions, merged_responses
from engagement_assets.platform.partitions import learner_batches
from engagement_assets.responses.assets import user_responses
from engagement_assets.retention.assets import recording_retention
from engagement_assets.settings import Settings

ASSETS = [
    telemetry_drop,
    cleaned_telemetry,
    user_responses,
    learner_sessions,
    merged_responses,
    response_audio,
    audio_analysis,
    recording_retention,
    phase_features,
    phase_level_engagement,
]
# The per-learner stages that are CPU work: ENGAGEMENT_LEARNERS_PER_RUN learners a run. The network stages
# (recordings, analysis) carry their own smaller batch.
CPU_STAGES = (user_responses, merged_responses, phase_features)


def build_engagement_definitions(settings: Settings) -> dg.Definitions:
    batches = learner_batches(settings.learners_per_run)
    return dg.Definitions(
        assets=[
            asset.with_attributes(backfill_policy=batches) if asset in CPU_STAGES else asset
            for asset in ASSETS
        ],
        sensors=build_sensors(settings),
    )
