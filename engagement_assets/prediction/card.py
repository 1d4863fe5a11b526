"""The engagement model's card in Markdown: what it predicts, from what, how well against the baselines,
how calibrated, and which features weigh most. Written next to the model and shown in the UI."""

from __future__ import annotations

import pandas as pd

from engagement_assets.prediction.training_set import FEATURE_MEANINGS

BASELINES = {
    "model": "this model (logistic regression)",
    "gradient_boosting": "gradient boosting, same features (for comparison)",
    "recency": "days since the previous phase alone",
    "base_rate": "the base rate (everyone the same)",
}


def card_markdown(card: dict) -> str:
    if card.get("status") != "trained":
        return f"# Engagement model\n\nNo model: {card.get('reason', card.get('status'))}.\n"
    window, rows = card["window"], card["rows"]
    return "\n".join(
        [
            "# Engagement model",
            "",
            "Predicts the chance that a learner starts **no further practice phase within 7 days** of the phase "
            "they just ended, from what was known when it ended. A prediction to help a teacher decide whom to "
            "contact, not a grade.",
            "",
            f"Trained on {rows['train']:,} labelled learner × phase rows ending up to 7 days before "
            f"{window['cutoff']}; evaluated on the {rows['evaluation']:,} rows ending after it (from "
            f"{window['first_end_time']} to {window['last_end_time']}). Model digest `{card['digest'][:16]}…`.",
            "",
            "## Evaluation (later phases than any trained on)",
            "",
            metrics_table(card).to_markdown(index=False),
            "",
            "ROC AUC: 0.5 is chance, 1 perfect ranking. PR AUC: precision over recall for the learners who "
            "stopped (the base rate is chance). Brier: mean squared error of the probabilities (lower is better).",
            "",
            "## Calibration (evaluation rows in five equal bins by predicted chance)",
            "",
            pd.DataFrame(card["calibration"]).to_markdown(index=False),
            "",
            "## Features by weight (log-odds per standard deviation; positive: towards stopping)",
            "",
            importance_table(card).to_markdown(index=False),
            "",
        ]
    )


def metrics_table(card: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [{"contender": BASELINES[name], **scores} for name, scores in card["evaluation"].items()]
    )


def importance_table(card: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [{**entry, "meaning": FEATURE_MEANINGS[entry["feature"]]} for entry in card["importance"]]
    )
