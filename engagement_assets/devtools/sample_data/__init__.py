"""Deterministic sample data for a landing area: telemetry exports, sessions CSVs, audio, and the truth.

    from engagement_assets.devtools.sample_data import generate_landing
    summary = generate_landing("data/landing", learners=8, seed=7, malformed=True)
    summary.kept("all_telemetry_part1.json")  # [(event_mid, event_ets_ms, user_id), ...] stage 1 must keep
    summary.expected_per_user                 # {user_id: responses after deduplicating across files}

The same seed and arguments give byte-identical files. `engagement-sample-data --help` is the command line.
"""

from .generator import generate_landing, plan_files
from .summary import SUMMARY_NAME, LandingSummary, TelemetryFileSummary

__all__ = ["SUMMARY_NAME", "LandingSummary", "TelemetryFileSummary", "generate_landing", "plan_files"]
