"""The prediction group as users run it, on a real instance with the Parquet I/O manager: training set,
model with its card and check, each learner's risk, and alerts end to end against a local webhook (one
that works, one that fails, one that stalls), idempotent and never lost; a tampered model is refused."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engagement_assets.devtools.sample_data.phase_history import phase_history
from engagement_assets.features.assets import phase_level_engagement
from engagement_assets.features.phases import FEATURES_SCHEMA
from engagement_assets.platform.resources import build_resources
from engagement_assets.prediction.assets import PREDICTION_ASSETS, prediction_resource
from engagement_assets.prediction.settings import PredictionSettings
from engagement_assets.settings import Settings
from engagement_assets_tests.prediction.webhook_receiver import WebhookReceiver

LEARNERS = 1500


@pytest.fixture(scope="module")
def planted_phases() -> pd.DataFrame:
    return phase_history(LEARNERS, seed=21, planted=True)


def store_phases(tmp_path, phases: pd.DataFrame) -> None:
    (tmp_path / "w").mkdir(exist_ok=True)
    table = pa.Table.from_pandas(phases, schema=FEATURES_SCHEMA, preserve_index=False)
    pq.write_table(table, tmp_path / "w" / "phase_level_engagement.parquet")


def resources(tmp_path, monkeypatch, **env) -> dict:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env({"ENGAGEMENT_STORAGE_URL": str(tmp_path / "w")})
    return {**build_resources(settings), "prediction": prediction_resource(PredictionSettings.from_env())}


def refresh(instance, resources, selection=PREDICTION_ASSETS, raise_on_error=True):
    return dg.materialize(
        [*PREDICTION_ASSETS, phase_level_engagement],
        selection=selection,
        instance=instance,
        resources=resources,
        raise_on_error=raise_on_error,
    )


def stored(tmp_path, asset) -> pd.DataFrame:
    return pd.read_parquet(tmp_path / "w" / f"{asset}.parquet")


def checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def materialization(result, asset: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {key: value.value for key, value in event.materialization.metadata.items()}


def test_the_group_trains_scores_and_shows_alerts_without_a_webhook(
    instance, tmp_path, monkeypatch, planted_phases
):
    monkeypatch.delenv("ENGAGEMENT_ALERT_WEBHOOK_URL", raising=False)
    store_phases(tmp_path, planted_phases)
    result = refresh(instance, resources(tmp_path, monkeypatch))
    assert result.success
    assert checks(result)["beats_recency_baseline"].passed
    model = materialization(result, "engagement_model")
    assert (
        model["status"] == "trained" and model["roc_auc"] > 0.6 and "base rate" in model["against_baselines"]
    )
    card = (tmp_path / "w" / "reports" / "engagement_model_card.md").read_text()
    assert "Calibration" in card and "not a grade" in card
    risk = stored(tmp_path, "learner_risk")
    assert len(risk) == materialization(result, "learner_risk")["learners"] > 0
    assert set(risk["band"]) <= {"high", "medium", "low"}
    ledger = stored(tmp_path, "engagement_alerts")
    assert (ledger["status"] == "shown").all() and (ledger["kind"] == "high_risk").sum() == (
        risk["band"] == "high"
    ).sum()
    assert checks(result)["alerts_delivered"].passed


def test_alerts_are_delivered_once_retried_after_a_failure_and_never_leak_the_hook(
    instance, tmp_path, monkeypatch, planted_phases
):
    store_phases(tmp_path, planted_phases)
    with WebhookReceiver() as hook:
        run_resources = resources(
            tmp_path, monkeypatch, ENGAGEMENT_ALERT_WEBHOOK_URL=hook.url, ENGAGEMENT_ALERT_ATTEMPTS="2"
        )
        hook.mode = "fail"
        failed = refresh(instance, run_resources)
        assert failed.success and not checks(failed)["alerts_delivered"].passed
        pending = stored(tmp_path, "engagement_alerts")
        assert (
            (pending["status"] == "failed").all() and (pending["attempts"] == 1).all() and not hook.messages
        )

        hook.mode = "ok"
        retried = refresh(instance, run_resources)
        assert checks(retried)["alerts_delivered"].passed
        delivered = stored(tmp_path, "engagement_alerts")
        assert (delivered["status"] == "sent").all() and len(delivered) == len(pending)
        assert len(hook.messages) == delivered["kind"].nunique()
        high = delivered[delivered["kind"] == "high_risk"]
        assert all(learner in "\n".join(hook.messages) for learner in high["subject"].head(10))

        again = refresh(instance, run_resources)
        assert materialization(again, "engagement_alerts")["new_alerts"] == 0
        assert len(hook.messages) == delivered["kind"].nunique()  # nothing twice
    logs = [str(entry) for run in (failed, retried, again) for entry in instance.all_logs(run.run_id)]
    secret = hook.path.rsplit("/", 1)[-1]
    assert not any(secret in entry for entry in logs)
    assert not any(secret.encode() in path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())


def test_a_stalled_webhook_costs_its_timeout_and_the_alert_waits(
    instance, tmp_path, monkeypatch, planted_phases
):
    store_phases(tmp_path, planted_phases)
    with WebhookReceiver() as hook:
        hook.mode, hook.stall_seconds = "stall", 3.0
        run_resources = resources(
            tmp_path,
            monkeypatch,
            ENGAGEMENT_ALERT_WEBHOOK_URL=hook.url,
            ENGAGEMENT_ALERT_ATTEMPTS="1",
            ENGAGEMENT_ALERT_TIMEOUT_SECONDS="0.5",
        )
        result = refresh(instance, run_resources)
    ledger = stored(tmp_path, "engagement_alerts")
    assert result.success and (ledger["status"] == "failed").all()
    assert ledger["error"].str.contains("Timeout").all()


def test_with_too_few_learners_there_is_no_model_and_risk_still_runs(instance, tmp_path, monkeypatch):
    store_phases(tmp_path, phase_history(5, seed=2))
    result = refresh(instance, resources(tmp_path, monkeypatch))
    assert result.success
    assert materialization(result, "engagement_model")["status"] == "not_trained"
    check = checks(result)["beats_recency_baseline"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    risk = stored(tmp_path, "learner_risk")
    assert set(risk["band"]) <= {"unknown"} and set(risk["status"]) <= {"no_model"}
    assert stored(tmp_path, "engagement_model").empty


def test_a_tampered_model_file_is_refused(instance, tmp_path, monkeypatch, planted_phases):
    store_phases(tmp_path, planted_phases)
    run_resources = resources(tmp_path, monkeypatch)
    assert refresh(instance, run_resources).success
    path = tmp_path / "w" / "engagement_model.parquet"
    table = pq.read_table(path)
    terms = table.to_pandas()
    terms.loc[0, "coefficient"] = 5.0
    pq.write_table(pa.Table.from_pandas(terms, schema=table.schema, preserve_index=False), path)
    with pytest.raises(dg.Failure, match="does not match the digest"):
        refresh(instance, run_resources, selection=["learner_risk"])


def test_a_new_engagement_table_refreshes_the_whole_group_by_automation(
    instance, tmp_path, monkeypatch, planted_phases
):
    store_phases(tmp_path, planted_phases)
    defs = dg.Definitions(
        assets=[*PREDICTION_ASSETS, phase_level_engagement], resources=resources(tmp_path, monkeypatch)
    )
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=phase_level_engagement.key))
    second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert first.total_requested == 0  # nothing new yet
    assert {asset.key: second.get_num_requested(asset.key) for asset in PREDICTION_ASSETS} == {
        asset.key: 1 for asset in PREDICTION_ASSETS
    }
