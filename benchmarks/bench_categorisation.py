"""Categorisation quality: precision and recall per class of the rule-based categorizer, on a labelled set
generated here from phrasings written independently of its keyword lists (so misses are real misses).

    python benchmarks/bench_categorisation.py
    python benchmarks/bench_categorisation.py --conversations 2000 --output /tmp/smoke

Each generated conversation is one learner message: a phrasing of a topic, framed as an intent (a question,
a request, a complaint, a greeting, feedback or a plain statement), with an optional mood clause that sets
its sentiment. The labels are the generator's; the table compares the categorizer's answers with them.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
sys.path[:0] = [str(REPO_ROOT), str(BENCH_DIR)]

from harness import machine_facts, machine_line, write_results  # noqa: E402
from sklearn.metrics import precision_recall_fscore_support  # noqa: E402

from engagement_assets.conversations.categorize import categorize  # noqa: E402
from engagement_assets.conversations.model_categories import (  # noqa: E402
    categorize_with_model,
    model_config,
    validated_categories,
)
from engagement_assets.platform.gemini_client import GeminiClient  # noqa: E402
from engagement_assets.storage.store import LocalStore  # noqa: E402
from engagement_assets_tests.fake_gemini import FakeGemini  # noqa: E402

MODEL = "gemini-2.5-flash-lite"

SUBJECTS = {
    "pronunciation": [
        "the th sound in 'three'",
        "saying 'vegetable' right",
        "my accent when I read aloud",
        "how to pronounce 'colonel'",
        "the r in 'river'",
        "stress in 'photograph'",
    ],
    "vocabulary": [
        "the meaning of 'enormous'",
        "another word for happy",
        "how to spell 'necessary'",
        "words about the weather",
        "what 'brave' means",
        "a synonym for big",
    ],
    "grammar": [
        "the past tense of 'eat'",
        "when to use 'an'",
        "plural of 'child'",
        "this sentence's verb",
        "using 'was' or 'were'",
        "where the article goes",
    ],
    "lesson_progress": [
        "my score in the last lesson",
        "the next level",
        "finishing today's practice",
        "unlocking the next exercise",
        "how many lessons are left",
        "my progress this week",
    ],
    "technical": [
        "the app closing by itself",
        "my microphone",
        "the audio not loading",
        "the login page",
        "a screen that stays white",
        "an error after I record",
    ],
    "account": [
        "my email address",
        "the subscription payment",
        "my profile picture",
        "registering my sister",
        "changing my account name",
        "a refund for the payment",
    ],
    "general": [
        "the weather today",
        "my favourite cricket team",
        "what you are",
        "my school trip",
        "nothing really",
        "my cat",
    ],
}
INTENTS = {
    "question": "What about {s}?",
    "request": "Please help me with {s}.",
    "complaint": "I have a problem with {s}, it is not working.",
    "greeting": "Hello! {s}",
    "feedback": "Thank you for {s}.",
    "statement": "Today I looked at {s}.",
}
MOODS = {
    "positive": " I love it, this is great fun.",
    "negative": " This is boring and terrible.",
    "neutral": "",
}


def labelled_set(conversations: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(conversations):
        topic, intent, mood = (
            rng.choice(sorted(SUBJECTS)),
            rng.choice(sorted(INTENTS)),
            rng.choice(sorted(MOODS)),
        )
        text = INTENTS[intent].format(s=rng.choice(SUBJECTS[topic])) + MOODS[mood]
        # Feedback thanks, so it reads positive unless a mood says otherwise.
        sentiment = "positive" if intent == "feedback" and mood == "neutral" else mood
        rows.append({"text": text, "topic": topic, "intent": intent, "sentiment": sentiment})
    return rows


def rule_answers(rows: list[dict]) -> list:
    return [categorize([row["text"]]) for row in rows]


def gemini_answers(rows: list[dict]) -> tuple[list, int]:
    """The Gemini categorizer through the real SDK against the local fake server, whose answers are canned
    (valid for the schema, not for the text): a test of the plumbing, not of a model's quality."""
    from google import genai
    from google.genai import types

    with FakeGemini(rpm=100_000) as fake, tempfile.TemporaryDirectory() as scratch:
        client = genai.Client(
            api_key="bench-key", http_options=types.HttpOptions(base_url=fake.url, api_version="v1beta")
        )
        analyzer = GeminiClient(
            client,
            MODEL,
            rpm=100_000,
            concurrency=8,
            config=model_config(MODEL),
            validate=validated_categories,
        )
        texts = {str(n): [row["text"]] for n, row in enumerate(rows)}
        found = categorize_with_model(texts, analyzer, LocalStore(scratch), MODEL)
    return [found.categories.get(str(n)) for n in range(len(rows))], len(found.errors)


def scores(rows: list[dict], answers: list) -> dict:
    report = {}
    for dimension in ("topic", "intent", "sentiment"):
        truth = [row[dimension] for row in rows]
        predicted = [getattr(answer, dimension) if answer else "none" for answer in answers]
        labels = sorted(set(truth))
        precision, recall, f1, support = precision_recall_fscore_support(
            truth, predicted, labels=labels, zero_division=0
        )
        report[dimension] = {
            "accuracy": round(sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth), 3),
            "classes": {
                label: {
                    "precision": round(float(p), 3),
                    "recall": round(float(r), 3),
                    "f1": round(float(f), 3),
                    "n": int(n),
                }
                for label, p, r, f, n in zip(labels, precision, recall, f1, support, strict=True)
            },
        }
    return report


def _markdown(results: dict) -> str:
    lines = [
        machine_line(results["machine"]),
        "",
        f"**Categorisation** (rule-based categorizer, {results['conversations']:,} generated one-message "
        f"conversations, seed {results['seed']})",
        "",
    ]
    for dimension, found in results["scores"].items():
        lines += [
            f"{dimension}: accuracy {found['accuracy']:.3f}",
            "",
            "| class | precision | recall | f1 | n |",
            "|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {label} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | {c['n']} |"
            for label, c in found["classes"].items()
        ]
        lines.append("")
    plumbing = results["gemini_plumbing"]
    lines += [
        f"**Gemini categorizer, plumbing only** ({plumbing['conversations']} of the conversations through the real "
        f"SDK to the local fake server, whose answers are canned): {plumbing['answered']} answered and validated, "
        f"{plumbing['failed']} failed; accuracy against the labels (meaningless for canned answers): "
        + ", ".join(f"{d} {found['accuracy']:.3f}" for d, found in plumbing["scores"].items()),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gemini-conversations", type=int, default=200, help="sent through the fake server")
    parser.add_argument("--output", type=Path, default=RESULTS / "categorisation")
    args = parser.parse_args()
    rows = labelled_set(args.conversations, args.seed)
    answers, failed = gemini_answers(rows[: args.gemini_conversations])
    results = {
        "machine": machine_facts(),
        "conversations": len(rows),
        "seed": args.seed,
        "scores": scores(rows, rule_answers(rows)),
        "gemini_plumbing": {
            "conversations": len(answers),
            "answered": sum(answer is not None for answer in answers),
            "failed": failed,
            "scores": scores(rows[: len(answers)], answers),
        },
    }
    write_results(args.output, results, _markdown(results))


if __name__ == "__main__":
    main()
