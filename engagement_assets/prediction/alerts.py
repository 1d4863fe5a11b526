"""Alerts for teachers and analysts: learners newly in the high-risk band, and a phase's or milestone
level's mean engagement falling week over week. Each alert has a key (what, about whom, which week), so
the same learner and week never alerts twice; an alert whose delivery failed stays pending and is sent by
the next refresh, never lost. Messages go to a Slack-compatible incoming webhook (`{"text": ...}`)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import pandas as pd
import pyarrow as pa
import requests

from engagement_assets.errors import redact
from engagement_assets.prediction.risk import HIGH
from engagement_assets.storage.columns import column

HIGH_RISK, ENGAGEMENT_DROP = "high_risk", "engagement_drop"
SENT, FAILED, SHOWN = "sent", "failed", "shown"
LISTED = 10
MAX_ERROR = 500
ALERT_SCHEMA = pa.schema(
    [
        column("alert_key", pa.string(), "kind:subject:week; one alert per key, ever"),
        column("kind", pa.string(), "high_risk or engagement_drop"),
        column("subject", pa.string(), "the learner id, or `phase P3` / `level m2`"),
        column("week", pa.string(), "ISO week of the data the alert is about (e.g. 2025-W14)"),
        column("detail", pa.string(), "what the alert says"),
        column("status", pa.string(), "sent, failed (retried by the next refresh), shown (no webhook set)"),
        column("attempts", pa.int64(), "delivery attempts so far"),
        column("error", pa.string(), "why the last delivery failed"),
    ]
)
ALERT_COLUMNS = tuple(ALERT_SCHEMA.names)


@dataclass(frozen=True)
class Delivery:
    url: str | None
    timeout_seconds: float
    attempts: int
    sleep: Callable[[float], None] = time.sleep


def iso_week(moment: pd.Timestamp) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def high_risk_alerts(risk: pd.DataFrame, week: str) -> pd.DataFrame:
    high = risk[risk["band"] == HIGH].sort_values("probability", ascending=False)
    return _alerts(
        HIGH_RISK,
        high["UserId"],
        week,
        [
            f"{probability:.0%} chance of stopping: " + "; ".join(r for r in reasons if isinstance(r, str))
            for probability, *reasons in high[["probability", "reason_1", "reason_2", "reason_3"]].itertuples(
                index=False
            )
        ],
    )


def engagement_drop_alerts(phases: pd.DataFrame, latest: pd.Timestamp, threshold: float) -> pd.DataFrame:
    """Phases and milestone levels whose mean engagement in the latest week fell more than `threshold`
    points below the week before."""
    this_week, last_week = iso_week(latest), iso_week(latest - pd.Timedelta(days=7))
    weeks = phases["end_time"].map(iso_week, na_action="ignore")
    found = []
    for label, column_name in (("phase", "Phase"), ("level", "MilestoneLevel")):
        means = (
            phases.assign(week=weeks)[lambda f: f["week"].isin([this_week, last_week])]
            .groupby([column_name, "week"])["avg_Engagement"]
            .mean()
            .unstack()
            .reindex(columns=[last_week, this_week])
        )
        fall = means[last_week] - means[this_week]
        for name, points in fall[fall > threshold].items():
            found.append(
                (
                    f"{label} {name}",
                    f"mean engagement {means.at[name, this_week]:.0f}, down {points:.0f} points from "
                    f"{means.at[name, last_week]:.0f} the week before",
                )
            )
    return _alerts(ENGAGEMENT_DROP, [s for s, _ in found], this_week, [d for _, d in found])


def refresh(
    ledger: pd.DataFrame, candidates: pd.DataFrame, delivery: Delivery
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ledger after this refresh, and the alerts this refresh raised: the candidates not alerted before
    are added; every alert not yet delivered (new, or failed before) is sent, one message per kind."""
    new = candidates[~candidates["alert_key"].isin(ledger["alert_key"])]
    book = pd.concat([ledger, new], ignore_index=True) if len(new) else ledger.copy()
    if delivery.url is None:
        book.loc[book["alert_key"].isin(new["alert_key"]), "status"] = SHOWN
        return book, new
    pending = book[book["status"].isna() | (book["status"] == FAILED)]
    for kind, alerts in pending.groupby("kind", sort=True):
        error = deliver(delivery, message(kind, alerts))
        book.loc[alerts.index, "attempts"] = book.loc[alerts.index, "attempts"].fillna(0) + 1
        book.loc[alerts.index, "status"] = FAILED if error else SENT
        book.loc[alerts.index, "error"] = error
    return book, new


def message(kind: str, alerts: pd.DataFrame) -> str:
    heading = (
        f"{len(alerts)} learner(s) newly at high risk of stopping practice"
        if kind == HIGH_RISK
        else f"Engagement fell in {len(alerts)} place(s)"
    )
    lines = [f"• {row.subject} ({row.week}): {row.detail}" for row in alerts.head(LISTED).itertuples()]
    more = (
        [f"… and {len(alerts) - LISTED} more (see learner_risk in Dagster)"] if len(alerts) > LISTED else []
    )
    return "\n".join([f"*{heading}*", *lines, *more])


def deliver(delivery: Delivery, text: str) -> str | None:
    """POSTs the message, retrying failures with backoff; None when delivered, else why not (redacted)."""
    error = None
    for attempt in range(1, delivery.attempts + 1):
        try:
            answer = requests.post(
                delivery.url, json={"text": text}, timeout=delivery.timeout_seconds, allow_redirects=False
            )
            if 200 <= answer.status_code < 300:
                return None
            error = f"the webhook answered {answer.status_code}: {answer.text[:200]}"
        except requests.RequestException as err:  # its text names the URL, which is the credential
            error = redact(f"{type(err).__name__}: {err}", also=_secret_parts(delivery.url))[:MAX_ERROR]
        if attempt < delivery.attempts:
            delivery.sleep(random.uniform(0, min(30.0, 0.5 * 2**attempt)))
    return redact(error, also=_secret_parts(delivery.url))


def _secret_parts(url: str) -> tuple[str, ...]:
    """A webhook URL is a credential, and so is its path alone (Slack's `/services/T…/B…/token`), which a
    receiver may echo in an error."""
    return url, urlsplit(url).path


def empty_ledger() -> pd.DataFrame:
    return ALERT_SCHEMA.empty_table().to_pandas()


def _alerts(kind: str, subjects, week: str, details) -> pd.DataFrame:
    subjects = list(subjects)
    return pd.DataFrame(
        {
            "alert_key": [f"{kind}:{subject}:{week}" for subject in subjects],
            "kind": kind,
            "subject": subjects,
            "week": week,
            "detail": list(details),
            "status": None,
            "attempts": 0,
            "error": None,
        },
        columns=list(ALERT_COLUMNS),
    )
