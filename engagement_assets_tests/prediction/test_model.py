"""The engagement model on generated histories: it finds a planted cause of stopping, beats the base rate
and recency, names the cause in its reasons, finds nothing where there is nothing (no leakage), and its
stored form round-trips while a tampered one is refused."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from engagement_assets.devtools.sample_data.phase_history import phase_history
from engagement_assets.prediction.model import (
    CARD_KEY,
    TamperedModel,
    beats_recency,
    loaded,
    stored_table,
    train,
)
from engagement_assets.prediction.risk import HIGH, learner_risk, top_reasons
from engagement_assets.prediction.training_set import training_set

LEARNERS = 2000


@pytest.fixture(scope="module")
def planted():
    history = training_set(phase_history(LEARNERS, seed=11, planted=True))
    return history, train(history.rows, min_rows=200)


def test_a_planted_cause_is_found_and_beats_both_baselines(planted):
    _, trained = planted
    scores = trained.card["evaluation"]
    assert trained.status == "trained" and beats_recency(trained.card)
    assert scores["model"]["roc_auc"] > scores["base_rate"]["roc_auc"] + 0.1
    assert scores["model"]["roc_auc"] > scores["recency"]["roc_auc"] + 0.1
    assert scores["model"]["brier"] < scores["base_rate"]["brier"]
    assert {entry["feature"] for entry in trained.card["importance"][:2]} == {
        "accuracy_change",
        "engagement_change",
    }


def test_the_evaluation_split_is_later_than_everything_trained_on(planted):
    _, trained = planted
    window = trained.card["window"]
    assert window["first_end_time"] < window["cutoff"] < window["last_end_time"]
    rows = trained.card["rows"]
    assert rows["train"] + rows["evaluation"] <= rows["labelled"] and rows["evaluation"] > 500


def test_the_calibration_table_covers_the_evaluation_rows(planted):
    _, trained = planted
    bins = trained.card["calibration"]
    assert sum(entry["rows"] for entry in bins) == trained.card["rows"]["evaluation"]
    predicted = [entry["mean_predicted"] for entry in bins]
    assert predicted == sorted(predicted) and all(0 <= entry["observed"] <= 1 for entry in bins)


def test_the_reasons_of_learners_whose_accuracy_fell_name_it(planted):
    history, trained = planted
    rows = history.rows
    fell = rows[rows["accuracy_change"] < -12]
    reasons = [found[0] for found in top_reasons(fell, trained.model.contributions(fell))]
    assert len(fell) > 50
    assert np.mean(["accuracy fell" in reason for reason in reasons]) > 0.8
    points = [int(reason.split("fell ")[1].split(" ")[0]) for reason in reasons if "accuracy fell" in reason]
    assert min(points) >= 12


def test_every_learner_with_an_open_latest_phase_is_scored_and_banded(planted):
    history, trained = planted
    risk = learner_risk(history.rows, history.latest_event, trained.model, high=0.3, medium=0.15)
    latest = history.rows.sort_values("end_time").groupby("UserId").tail(1)
    assert sorted(risk["UserId"]) == sorted(latest.loc[latest["stopped_within_7d"].isna(), "UserId"])
    assert risk["probability"].between(0, 1).all() and set(risk["band"]) <= {"high", "medium", "low"}
    high = risk[risk["band"] == HIGH]
    assert (high["probability"] >= 0.3).all() and high["reason_1"].notna().all()
    assert (risk["days_since_last_practice"] >= 0).all()


def test_without_a_cause_the_evaluation_is_chance():
    trained = train(training_set(phase_history(3000, seed=5, planted=False)).rows, min_rows=200)
    assert abs(trained.card["evaluation"]["model"]["roc_auc"] - 0.5) <= 0.05


def test_too_few_labelled_rows_give_no_model_and_unknown_risk():
    history = training_set(phase_history(5, seed=1))
    trained = train(history.rows, min_rows=200)
    assert (
        trained.model is None
        and trained.status == "not_trained"
        and "labelled rows" in trained.card["reason"]
    )
    risk = learner_risk(history.rows, history.latest_event, None, 0.6, 0.3)
    assert set(risk["band"]) <= {"unknown"} and risk["probability"].isna().all()
    assert loaded(stored_table(trained)).model is None


def test_the_stored_model_round_trips(planted):
    history, trained = planted
    again = loaded(stored_table(trained))
    np.testing.assert_array_equal(
        again.model.probability(history.rows), trained.model.probability(history.rows)
    )
    assert again.card == json.loads(json.dumps(trained.card))


@pytest.mark.parametrize("change", ["coefficient", "term", "card_digest", "not_a_number"])
def test_a_tampered_model_is_refused(planted, change):
    _, trained = planted
    table = stored_table(trained)
    terms, card = table.to_pandas(), json.loads(table.schema.metadata[CARD_KEY])
    if change == "coefficient":
        terms.loc[0, "coefficient"] += 1e-9
    elif change == "term":
        terms = terms.iloc[1:]
    elif change == "card_digest":
        card["digest"] = "0" * 64
    else:
        terms.loc[1, "scale"] = float("nan")
    tampered = pa.Table.from_pandas(terms, schema=table.schema, preserve_index=False)
    tampered = tampered.replace_schema_metadata({CARD_KEY: json.dumps(card).encode()})
    with pytest.raises(TamperedModel):
        loaded(tampered)
