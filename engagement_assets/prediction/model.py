"""The engagement model: a logistic regression on the standardised training-set features, trained on
labelled rows with a time-based split and evaluated on the phases that ended after the cutoff.

Why a linear model: each prediction is a sum of per-feature terms, so its reasons are exact (the terms),
not an approximation, and it is stored as a table of numbers that is safe to load (no pickle, no code). The
card reports a gradient-boosted model (scikit-learn's HistGradientBoostingClassifier) trained on the same
split next to it, so the choice can be checked by the metrics on every retraining.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from engagement_assets.prediction.training_set import FEATURES, HORIZON, LABEL
from engagement_assets.storage.columns import column

INTERCEPT = "(intercept)"
MODEL_SCHEMA = pa.schema(
    [
        column("term", pa.string(), "a feature, or (intercept)"),
        column("mean", pa.float64(), "the feature's training mean (also what a missing value is taken as)"),
        column("scale", pa.float64(), "the feature's training standard deviation"),
        column("coefficient", pa.float64(), "log-odds of stopping per standard deviation of the feature"),
    ]
)
CARD_KEY = b"engagement.model_card"
EVALUATION_SHARE = 0.25
CALIBRATION_BINS = 5
RECENCY_FEATURE = "days_since_previous_phase"


class TamperedModel(ValueError):
    """The stored model is not the one its card describes."""


@dataclass(frozen=True)
class LinearModel:
    features: tuple[str, ...]
    means: np.ndarray
    scales: np.ndarray
    coefficients: np.ndarray
    intercept: float

    def standardised(self, frame: pd.DataFrame) -> np.ndarray:
        values = frame[list(self.features)].astype(float).to_numpy()
        values = np.where(np.isnan(values), self.means, values)
        return (values - self.means) / self.scales

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Each feature's term in each row's log-odds of stopping (positive: towards stopping)."""
        return pd.DataFrame(
            self.standardised(frame) * self.coefficients, columns=list(self.features), index=frame.index
        )

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        return _sigmoid(self.contributions(frame).sum(axis=1).to_numpy() + self.intercept)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "term": [*self.features, INTERCEPT],
                "mean": [*self.means, 0.0],
                "scale": [*self.scales, 1.0],
                "coefficient": [*self.coefficients, self.intercept],
            }
        )

    def digest(self) -> str:
        return _digest(self.table())


@dataclass
class Trained:
    model: LinearModel | None
    card: dict = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.card["status"]


def train(rows: pd.DataFrame, min_rows: int) -> Trained:
    """A model from the labelled rows, or none (with the reason) when there are too few to learn and
    evaluate on."""
    labelled = rows[rows[LABEL].notna()].sort_values("end_time", kind="stable")
    split = _time_split(labelled)
    if split is None or len(labelled) < min_rows:
        return Trained(None, _untrained(labelled, min_rows))
    train_rows, evaluation, cutoff = split
    model = _fit(train_rows, FEATURES)
    recency = _fit(train_rows, (RECENCY_FEATURE,))
    truth = evaluation[LABEL].astype(bool).to_numpy()
    base_rate = float(train_rows[LABEL].astype(bool).mean())
    predicted = model.probability(evaluation)
    card = {
        "status": "trained",
        "features": list(FEATURES),
        "digest": model.digest(),
        "rows": {"labelled": len(labelled), "train": len(train_rows), "evaluation": len(evaluation)},
        "window": {
            "first_end_time": str(labelled["end_time"].min()),
            "cutoff": str(cutoff),
            "last_end_time": str(labelled["end_time"].max()),
        },
        "evaluation": {
            "model": _scores(truth, predicted),
            "base_rate": _scores(truth, np.full(len(truth), base_rate)),
            "recency": _scores(truth, recency.probability(evaluation)),
            "gradient_boosting": _scores(
                truth, _boosted(train_rows).predict_proba(_matrix(evaluation))[:, 1]
            ),
        },
        "calibration": calibration(truth, predicted),
        "importance": importance(model),
    }
    return Trained(model, card)


def beats_recency(card: dict) -> bool:
    scores = card["evaluation"]
    return scores["model"]["roc_auc"] > scores["recency"]["roc_auc"]


def stored_table(trained: Trained) -> pa.Table:
    """The model as stored: its terms, with the card (metrics, window, digest) in the file's metadata."""
    terms = trained.model.table() if trained.model else MODEL_SCHEMA.empty_table().to_pandas()
    table = pa.Table.from_pandas(terms, schema=MODEL_SCHEMA, preserve_index=False)
    return table.replace_schema_metadata({CARD_KEY: json.dumps(trained.card).encode()})


def loaded(table: pa.Table) -> Trained:
    """The stored model, checked against its card: a changed term, a missing or extra one, or a value
    that is not a finite number is refused (TamperedModel). An untrained card gives no model."""
    card = json.loads((table.schema.metadata or {}).get(CARD_KEY, b"{}"))
    if card.get("status") != "trained":
        return Trained(None, card or {"status": "no model stored"})
    terms = table.to_pandas()
    numbers = terms[["mean", "scale", "coefficient"]].to_numpy(dtype=float)
    if not np.isfinite(numbers).all() or (terms["scale"] <= 0).any():
        raise TamperedModel("the stored model holds values that are not usable numbers")
    if _digest(terms) != card.get("digest") or terms["term"].tolist() != [*card["features"], INTERCEPT]:
        raise TamperedModel("the stored model does not match the digest in its card: refusing to use it")
    body = terms[terms["term"] != INTERCEPT]
    model = LinearModel(
        tuple(body["term"]),
        body["mean"].to_numpy(),
        body["scale"].to_numpy(),
        body["coefficient"].to_numpy(),
        float(terms.loc[terms["term"] == INTERCEPT, "coefficient"].iloc[0]),
    )
    return Trained(model, card)


def calibration(truth: np.ndarray, predicted: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict]:
    """Predicted against observed stopping rate, in bins of equal size by predicted probability."""
    order = np.argsort(predicted, kind="stable")
    return [
        {
            "rows": len(chunk),
            "mean_predicted": round(float(predicted[chunk].mean()), 4),
            "observed": round(float(truth[chunk].mean()), 4),
        }
        for chunk in np.array_split(order, bins)
        if len(chunk)
    ]


def importance(model: LinearModel) -> list[dict]:
    """Features by the size of their standardised coefficient (the effect of one standard deviation)."""
    pairs = sorted(zip(model.features, model.coefficients, strict=True), key=lambda pair: -abs(pair[1]))
    return [{"feature": name, "coefficient": round(float(value), 4)} for name, value in pairs]


def _time_split(labelled: pd.DataFrame):
    """Train on phases whose label was known by the cutoff, evaluate on those ending after it: no row used
    in training looks past the cutoff, and none evaluated ends before it."""
    if len(labelled) < 2:
        return None
    cutoff = labelled["end_time"].quantile(1 - EVALUATION_SHARE)
    train_rows = labelled[labelled["end_time"] + HORIZON <= cutoff]
    evaluation = labelled[labelled["end_time"] > cutoff]
    both_classes = all(frame[LABEL].astype(bool).nunique() == 2 for frame in (train_rows, evaluation))
    return (train_rows, evaluation, cutoff) if both_classes else None


def _untrained(labelled: pd.DataFrame, min_rows: int) -> dict:
    return {
        "status": "not_trained",
        "reason": (
            f"{len(labelled)} labelled rows (at least {min_rows} are needed, with stopped and continuing "
            "learners on both sides of the time split)"
        ),
        "rows": {"labelled": len(labelled)},
    }


def _matrix(frame: pd.DataFrame, features=FEATURES) -> np.ndarray:
    return frame[list(features)].astype(float).to_numpy()


# scikit-learn is imported by the functions that train and score: every run and step process imports
# the code location, and scikit-learn adds about a second to each; only the model's step needs it.


def _fit(rows: pd.DataFrame, features: tuple[str, ...]) -> LinearModel:
    from sklearn.linear_model import LogisticRegression

    values = _matrix(rows, features)
    means = np.nanmean(values, axis=0)
    means = np.where(np.isnan(means), 0.0, means)
    values = np.where(np.isnan(values), means, values)
    scales = values.std(axis=0)
    scales = np.where(scales > 0, scales, 1.0)
    fitted = LogisticRegression(max_iter=1000).fit((values - means) / scales, rows[LABEL].astype(bool))
    return LinearModel(features, means, scales, fitted.coef_[0], float(fitted.intercept_[0]))


def _boosted(rows: pd.DataFrame):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(
        _matrix(rows), rows[LABEL].astype(bool)
    )


def _scores(truth: np.ndarray, predicted: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    return {
        "roc_auc": round(float(roc_auc_score(truth, predicted)), 4),
        "pr_auc": round(float(average_precision_score(truth, predicted)), 4),
        "brier": round(float(brier_score_loss(truth, predicted)), 4),
    }


def _digest(terms: pd.DataFrame) -> str:
    canonical = json.dumps(
        [[row.term, float(row.mean), float(row.scale), float(row.coefficient)] for row in terms.itertuples()]
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))
