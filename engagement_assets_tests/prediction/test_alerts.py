"""Alerts without Dagster: which ones a refresh raises, that a key alerts once, how a failed delivery
stays pending, and that the webhook's secret never reaches an error."""

from __future__ import annotations

import pandas as pd

from engagement_assets.prediction.alerts import (
    ENGAGEMENT_DROP,
    FAILED,
    HIGH_RISK,
    SENT,
    SHOWN,
    Delivery,
    empty_ledger,
    engagement_drop_alerts,
    high_risk_alerts,
    iso_week,
    message,
    refresh,
)
from engagement_assets_tests.prediction.webhook_receiver import WebhookReceiver

LATEST = pd.Timestamp("2025-03-14 12:00")  # a Friday of 2025-W11


def phases(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["Phase", "MilestoneLevel", "end_time", "avg_Engagement"])


def risk(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["UserId", "probability", "band", "reason_1", "reason_2", "reason_3"])


def test_a_fall_in_a_phases_mean_engagement_week_over_week_alerts():
    week_before, this_week = LATEST - pd.Timedelta(days=7), LATEST
    table = phases(
        [
            ("P3", "m1", week_before, 70),
            ("P3", "m2", week_before, 74),
            ("P3", "m1", this_week, 55),  # P3: 72 → 55
            ("P4", "m1", week_before, 60),
            ("P4", "m2", this_week, 58),  # P4: 60 → 58, under the threshold
        ]
    )
    alerts = engagement_drop_alerts(table, LATEST, threshold=10)
    subjects = dict(zip(alerts["subject"], alerts["detail"], strict=True))
    assert set(subjects) == {"phase P3", "level m2"}  # m1: 65 → 55 is not more than 10; m2: 74 → 58
    assert "down 17 points from 72" in subjects["phase P3"]
    assert set(alerts["week"]) == {iso_week(LATEST)} and set(alerts["kind"]) == {ENGAGEMENT_DROP}


def test_a_phase_absent_in_one_of_the_weeks_does_not_alert():
    table = phases([("P1", "m1", LATEST - pd.Timedelta(days=7), 80)])
    assert engagement_drop_alerts(table, LATEST, threshold=10).empty


def test_high_risk_alerts_carry_the_probability_and_reasons():
    alerts = high_risk_alerts(
        risk(
            [
                ("a", 0.8, "high", "accuracy fell 25 points over the last 3 phases", None, None),
                ("b", 0.2, "low", None, None, None),
            ]
        ),
        "2025-W11",
    )
    assert alerts["subject"].tolist() == ["a"] and alerts["alert_key"].tolist() == ["high_risk:a:2025-W11"]
    assert (
        alerts["detail"].iloc[0] == "80% chance of stopping: accuracy fell 25 points over the last 3 phases"
    )


def test_without_a_webhook_alerts_are_shown_once():
    candidates = high_risk_alerts(risk([("a", 0.8, "high", "r", None, None)]), "2025-W11")
    ledger, new = refresh(empty_ledger(), candidates, Delivery(None, 1.0, 1))
    assert ledger["status"].tolist() == [SHOWN] and len(new) == 1
    again, new_again = refresh(ledger, candidates, Delivery(None, 1.0, 1))
    assert len(again) == 1 and new_again.empty


def test_a_failed_delivery_stays_pending_then_goes_out_once():
    candidates = high_risk_alerts(
        risk([("a", 0.8, "high", "r", None, None), ("b", 0.7, "high", "r", None, None)]), "2025-W11"
    )
    with WebhookReceiver() as hook:
        delivery = Delivery(hook.url, 2.0, 2, sleep=lambda seconds: None)
        hook.mode = "fail"
        ledger, _ = refresh(empty_ledger(), candidates, delivery)
        assert set(ledger["status"]) == {FAILED} and ledger["attempts"].tolist() == [1, 1]
        assert hook.path not in " ".join(ledger["error"]) and "[redacted]" in ledger["error"].iloc[0]
        hook.mode = "ok"
        ledger, new = refresh(ledger, candidates, delivery)
        assert set(ledger["status"]) == {SENT} and new.empty and len(hook.messages) == 1
        ledger, _ = refresh(ledger, candidates, delivery)
        assert len(hook.messages) == 1


def test_an_unreachable_webhook_is_a_failed_delivery_with_the_url_redacted():
    candidates = high_risk_alerts(risk([("a", 0.8, "high", "r", None, None)]), "2025-W11")
    url = "http://127.0.0.1:9/services/T1/B1/unreachable-secret-token"
    ledger, _ = refresh(empty_ledger(), candidates, Delivery(url, 0.5, 1))
    assert ledger["status"].tolist() == [FAILED] and "unreachable-secret-token" not in ledger["error"].iloc[0]


def test_a_message_lists_at_most_ten_and_counts_the_rest():
    many = high_risk_alerts(risk([(str(n), 0.9, "high", "r", None, None) for n in range(25)]), "2025-W11")
    text = message(HIGH_RISK, many)
    assert text.count("•") == 10 and "and 15 more" in text and text.startswith("*25 learner(s)")
