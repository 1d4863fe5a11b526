"""Prediction wiring: the training set, the model, each learner's risk and the alerts, refreshed by
automation whenever the phase-level engagement table changes."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from engagement_assets.errors import redact
from engagement_assets.platform.metadata import counts_table, preview, table_metadata
from engagement_assets.platform.resources import StoreResource
from engagement_assets.prediction import alerts
from engagement_assets.prediction.card import card_markdown, importance_table, metrics_table
from engagement_assets.prediction.model import (
    MODEL_SCHEMA,
    TamperedModel,
    beats_recency,
    loaded,
    stored_table,
    train,
)
from engagement_assets.prediction.risk import RISK_SCHEMA
from engagement_assets.prediction.risk import learner_risk as scored_learners
from engagement_assets.prediction.settings import PredictionSettings
from engagement_assets.prediction.training_set import LABEL, TRAINING_SCHEMA, training_set
from engagement_assets.storage import layout
from engagement_assets.storage.parquet import read_parquet

GROUP = "prediction"
# Named before their functions: the checks, the risk's dependency and the stored files refer to them.
MODEL_ASSET, ALERTS_ASSET = "engagement_model", "engagement_alerts"
BEATS_RECENCY_CHECK = "beats_recency_baseline"
DELIVERED_CHECK = "alerts_delivered"
_AUTOMATION = {"group_name": GROUP, "automation_condition": dg.AutomationCondition.eager()}


class PredictionResource(dg.ConfigurableResource):
    """Risk bands, when a model is trained, and the alert webhook."""

    # Every field comes from PredictionSettings (prediction_resource): the defaults live there only.
    risk_high: float
    risk_medium: float
    min_training_rows: int
    webhook_url: str | None = Field(
        description="Set from the ENGAGEMENT_ALERT_WEBHOOK_URL environment variable."
    )
    engagement_drop: float
    timeout_seconds: float
    attempts: int

    def delivery(self) -> alerts.Delivery:
        return alerts.Delivery(self.webhook_url or None, self.timeout_seconds, self.attempts)


def prediction_resource(settings: PredictionSettings) -> PredictionResource:
    return PredictionResource(
        risk_high=settings.risk_high,
        risk_medium=settings.risk_medium,
        min_training_rows=settings.min_training_rows,
        webhook_url=dg.EnvVar("ENGAGEMENT_ALERT_WEBHOOK_URL") if settings.alert_webhook_set else None,
        engagement_drop=settings.alert_engagement_drop,
        timeout_seconds=settings.alert_timeout_seconds,
        attempts=settings.alert_attempts,
    )


@dg.asset(kinds={"parquet"}, metadata=table_metadata(TRAINING_SCHEMA), **_AUTOMATION)
def engagement_training_set(phase_level_engagement: pd.DataFrame) -> dg.MaterializeResult[pd.DataFrame]:
    """One row per learner × phase occurrence with what was known when the phase ended (the phase's own
    features, the learner's history so far, recent trends) and whether the learner then stopped: started no
    further phase within 7 days. Rows ending within 7 days of the latest event are not labelled yet."""
    result = training_set(phase_level_engagement)
    rows = result.rows
    labelled = rows[LABEL].notna()
    return dg.MaterializeResult(
        value=rows,
        metadata={
            "learners": int(rows["UserId"].nunique()),
            "labelled_rows": int(labelled.sum()),
            "unlabelled_rows": int((~labelled).sum()),
            "stopped_share": round(float(rows.loc[labelled, LABEL].astype(bool).mean()), 4)
            if labelled.any()
            else 0.0,
            "latest_event": str(result.latest_event),
            "dropped_by_reason": counts_table(result.dropped),
        },
    )


@dg.asset(
    name=MODEL_ASSET,
    kinds={"scikitlearn", "parquet"},
    metadata=table_metadata(MODEL_SCHEMA),
    check_specs=[
        dg.AssetCheckSpec(
            BEATS_RECENCY_CHECK,
            asset=MODEL_ASSET,
            description="The model ranks the evaluation split better than days since the previous phase alone.",
        )
    ],
    **_AUTOMATION,
)
def engagement_model(
    engagement_training_set: pd.DataFrame, prediction: PredictionResource, warehouse: StoreResource
):
    """The model that predicts stopping: a logistic regression's terms (feature, training mean and scale,
    coefficient), trained on the labelled rows with a time-based split, with its card (metrics against the
    baselines, calibration, feature weights, rows and dates) in the file and in reports/. No model (and a
    clear status) while there are too few labelled rows."""
    trained = train(engagement_training_set, prediction.min_training_rows)
    store = warehouse.store()
    store.put_bytes(card_markdown(trained.card).encode(), layout.MODEL_CARD_KEY)
    metadata = {"status": trained.status, "card": dg.MetadataValue.path(store.uri(layout.MODEL_CARD_KEY))}
    if trained.model is None:
        metadata["reason"] = trained.card["reason"]
        check = dg.AssetCheckResult(
            check_name=BEATS_RECENCY_CHECK,
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"status": trained.card["reason"]},
        )
    else:
        metadata.update(_trained_metadata(trained.card))
        scores = trained.card["evaluation"]
        check = dg.AssetCheckResult(
            check_name=BEATS_RECENCY_CHECK,
            passed=beats_recency(trained.card),
            metadata={
                "model_roc_auc": scores["model"]["roc_auc"],
                "recency_roc_auc": scores["recency"]["roc_auc"],
            },
        )
    return dg.MaterializeResult(value=stored_table(trained), metadata=metadata, check_results=[check])


def _trained_metadata(card: dict) -> dict:
    return {
        "roc_auc": card["evaluation"]["model"]["roc_auc"],
        "pr_auc": card["evaluation"]["model"]["pr_auc"],
        "brier": card["evaluation"]["model"]["brier"],
        "against_baselines": dg.MetadataValue.md(metrics_table(card).to_markdown(index=False)),
        "calibration": dg.MetadataValue.md(pd.DataFrame(card["calibration"]).to_markdown(index=False)),
        "feature_weights": dg.MetadataValue.md(importance_table(card).to_markdown(index=False)),
        "training_rows": card["rows"]["train"],
        "evaluation_rows": card["rows"]["evaluation"],
        "evaluated_from": card["window"]["cutoff"],
    }


@dg.asset(deps=[MODEL_ASSET], kinds={"parquet"}, metadata=table_metadata(RISK_SCHEMA), **_AUTOMATION)
def learner_risk(
    engagement_training_set: pd.DataFrame, prediction: PredictionResource, warehouse: StoreResource
) -> dg.MaterializeResult[pd.DataFrame]:
    """Each learner whose latest phase is still open (ended within 7 days of the latest event): the chance
    they start no further phase within 7 days of it, a band (high, medium, low) and the model's three
    strongest reasons in a teacher's words. A prediction to help decide whom to contact, not a grade."""
    trained = _stored_model(warehouse)
    rows = engagement_training_set
    risk = scored_learners(
        rows, rows["end_time"].max(), trained.model, prediction.risk_high, prediction.risk_medium
    )
    bands = risk["band"].value_counts().to_dict()
    return dg.MaterializeResult(
        value=risk,
        metadata={
            "learners": len(risk),
            "model_status": trained.card.get("status", "no model stored"),
            "by_band": counts_table(bands, "band"),
            "highest_risk": preview(
                risk.sort_values("probability", ascending=False)[
                    ["UserId", "probability", "band", "reason_1"]
                ]
            ),
        },
    )


def _stored_model(warehouse: StoreResource):
    store = warehouse.store()
    key = layout.table_file(MODEL_ASSET)
    try:
        # Read whole (a few rows): the card lives in the file's metadata.
        return loaded(pq.read_table(pa.BufferReader(store.read_bytes(key))))
    except TamperedModel as err:
        raise dg.Failure(description=redact(f"{store.uri(key)}: {err}")) from None


@dg.asset(
    name=ALERTS_ASSET,
    kinds={"slack", "parquet"},
    metadata=table_metadata(alerts.ALERT_SCHEMA),
    check_specs=[
        dg.AssetCheckSpec(
            DELIVERED_CHECK, asset=ALERTS_ASSET, description="Every alert raised has been delivered."
        )
    ],
    **_AUTOMATION,
)
def engagement_alerts(
    learner_risk: pd.DataFrame,
    phase_level_engagement: pd.DataFrame,
    prediction: PredictionResource,
    warehouse: StoreResource,
):
    """Every alert ever raised, once per key: learners newly in the high-risk band (per ISO week), and
    phases or milestone levels whose mean engagement fell week over week by more than the configured
    points; sent to the webhook when one is set (a failed delivery stays pending and is retried)."""
    store, phases = warehouse.store(), phase_level_engagement
    latest = phases["end_time"].max()
    candidates = pd.concat(
        [
            alerts.high_risk_alerts(learner_risk, alerts.iso_week(latest)),
            alerts.engagement_drop_alerts(phases, latest, prediction.engagement_drop),
        ],
        ignore_index=True,
    )
    ledger, new = alerts.refresh(_stored_ledger(store), candidates, prediction.delivery())
    failed = ledger[ledger["status"] == alerts.FAILED]
    return dg.MaterializeResult(
        value=ledger,
        metadata={
            "new_alerts": len(new),
            "new_by_kind": counts_table(new["kind"].value_counts().to_dict(), "kind"),
            "new": preview(new[["kind", "subject", "week", "detail"]]),
            "webhook": "set" if prediction.webhook_url else "unset: alerts are shown here only",
            "pending_after_failure": len(failed),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=DELIVERED_CHECK,
                passed=failed.empty,
                metadata={
                    "failed": len(failed),
                    "last_error": str(failed["error"].iloc[-1]) if len(failed) else "",
                },
            )
        ],
    )


def _stored_ledger(store) -> pd.DataFrame:
    key = layout.table_file(ALERTS_ASSET)
    if not store.exists(key):
        return alerts.empty_ledger()
    return read_parquet(store, [key], schema=alerts.ALERT_SCHEMA).to_pandas()


PREDICTION_ASSETS = [engagement_training_set, engagement_model, learner_risk, engagement_alerts]
