"""The anonymiser alone: the keyed hash, what the scrubbing patterns catch and leave, and its counts."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd
import pytest

from engagement_assets.conversations.anonymise import anonymiser
from engagement_assets.conversations.records import Parsed


def test_the_pseudonym_is_an_hmac_of_the_id_under_the_key():
    anon = anonymiser(True, "k" * 16, None)
    expected = hmac.new(b"k" * 16, b"learner-1", hashlib.sha256).hexdigest()[:24]
    assert anon.pseudonym("learner-1") == "anon-" + expected
    assert anonymiser(True, "other-key-123456", None).pseudonym("learner-1") != anon.pseudonym("learner-1")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("write to a.b-c+d@mail.example.co.in please", "email"),
        ("call +91 98765 43210", "phone"),
        ("call (080) 2345-6789 now", "phone"),
        ("my number is 9876543210", "phone"),
    ],
)
def test_personal_data_in_text_is_scrubbed(text, kind):
    anon = anonymiser(True, "k" * 16, None)
    scrubbed = anon.scrub(text)
    assert f"[{kind} removed]" in scrubbed and anon.counts[kind] == 1


@pytest.mark.parametrize("text", ["lesson 3 of 12", "score 98.5 in 2024", "P1 to P8", "at 10:30"])
def test_ordinary_text_is_left_alone(text):
    assert anonymiser(True, "k" * 16, None).scrub(text) == text


def test_configured_patterns_are_scrubbed_and_counted():
    anon = anonymiser(True, "k" * 16, r"ROLL-\d+;;Aadhaar \d{4} \d{4} \d{4}")
    assert anon.scrub("ROLL-77 and Aadhaar 1234 5678 9012") == "[pattern removed] and [pattern removed]"
    assert anon.counts["pattern"] == 2


def test_a_batch_is_anonymised_rows_and_rejected_alike():
    parsed = Parsed(
        rows=pd.DataFrame({"user_id": ["u-1", None], "text": ["x@y.org", None]}),
        rejected=pd.DataFrame(
            {"table": ["messages"], "Id": [3], "reason": ["missing sent_at"], "row": ["{'user_id': 'u-1'}"]}
        ),
    )
    anon = anonymiser(True, "k" * 16, None)
    done = anon.apply(parsed)
    assert done.rows["user_id"].iloc[0].startswith("anon-") and pd.isna(done.rows["user_id"].iloc[1])
    assert done.rows["text"].iloc[0] == "[email removed]" and "u-1" not in done.rejected["row"].iloc[0]


def test_on_without_a_key_is_refused():
    with pytest.raises(ValueError, match="ANONYMIZE_SECRET"):
        anonymiser(True, None, None)
    assert anonymiser(False, None, None) is None
