"""The prediction group's configuration: risk bands, when a model is trained, and where alerts go.
Declared once, as in `engagement_assets/settings.py`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engagement_assets.settings import env_setting, from_environment, is_set, positive_float, positive_int


def probability(value: str) -> float:
    number = positive_float(value)
    if number >= 1:
        raise ValueError("must be a probability between 0 and 1")
    return number


@dataclass(frozen=True)
class PredictionSettings:
    risk_high: float = env_setting(
        "ENGAGEMENT_RISK_HIGH",
        0.5,
        "chance of stopping within 7 days from which a learner is `high` risk",
        parse=probability,
    )
    risk_medium: float = env_setting(
        "ENGAGEMENT_RISK_MEDIUM", 0.25, "… and from which `medium` (below: `low`)", parse=probability
    )
    min_training_rows: int = env_setting(
        "ENGAGEMENT_MIN_TRAINING_ROWS",
        200,
        "labelled learner × phase rows needed before a model is trained",
        parse=positive_int,
    )
    alert_webhook_set: bool = env_setting(
        "ENGAGEMENT_ALERT_WEBHOOK_URL",
        False,
        "a Slack-compatible incoming webhook for alerts; unset: alerts only in the UI. Reaches the resource "
        "as an `EnvVar`, never shown or stored",
        parse=is_set,
    )
    alert_engagement_drop: float = env_setting(
        "ENGAGEMENT_ALERT_ENGAGEMENT_DROP",
        10.0,
        "week-over-week fall of a phase's or level's mean engagement (points) that alerts",
        parse=positive_float,
    )
    alert_timeout_seconds: float = env_setting(
        "ENGAGEMENT_ALERT_TIMEOUT_SECONDS",
        10.0,
        "longest one webhook delivery may take",
        parse=positive_float,
    )
    alert_attempts: int = env_setting(
        "ENGAGEMENT_ALERT_ATTEMPTS",
        3,
        "tries per delivery in one run; a message still failing is retried by the next run",
        parse=positive_int,
    )

    def __post_init__(self):
        if not self.risk_medium < self.risk_high:
            raise ValueError("ENGAGEMENT_RISK_MEDIUM must be below ENGAGEMENT_RISK_HIGH")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PredictionSettings:
        return from_environment(cls, environ)
