"""The prediction group as Dagster definitions, built from its settings."""

from __future__ import annotations

import dagster as dg

from engagement_assets.prediction.assets import PREDICTION_ASSETS, prediction_resource
from engagement_assets.prediction.settings import PredictionSettings


def build_prediction_definitions(settings: PredictionSettings) -> dg.Definitions:
    """Its assets (which follow the phase-level engagement table by automation) and its resource."""
    return dg.Definitions(assets=PREDICTION_ASSETS, resources={"prediction": prediction_resource(settings)})
