"""learner_profiles' query on stored files: answers from user_responses, levels from merged_responses, and
what the telemetry says of each learner from every drop's learner_attributes."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engagement_assets.cohorts.profiles import OWN, SHARED, learner_profiles
from engagement_assets.ingestion.events import LEARNER_ATTRIBUTES_SCHEMA, RESPONSE_SCHEMA
from engagement_assets.matching.matching import MERGED_SCHEMA
from engagement_assets.storage.store import open_store

SOURCES = {
    "responses": ("user_responses", RESPONSE_SCHEMA),
    "merged": ("merged_responses", MERGED_SCHEMA),
    "attributes": ("learner_attributes", LEARNER_ATTRIBUTES_SCHEMA),
}


def write(root, asset: str, key: str, rows: list[dict], schema: pa.Schema) -> None:
    folder = root / asset
    folder.mkdir(exist_ok=True)
    frame = pd.DataFrame(rows, columns=schema.names)
    pq.write_table(
        pa.Table.from_pandas(frame, schema=schema, preserve_index=False), folder / f"{key}.parquet"
    )


def answers(learner: str, *days: str) -> list[dict]:
    return [
        {"event_mid": f"{learner}-{day}", "event_ets": pd.Timestamp(day), "user_id": learner,
         "user_id_source": "virtualId", "session_id": "s", "language": "en", "created_at": pd.Timestamp(day)}
        for day in days
    ]  # fmt: skip


def seen(learner, device, build, school, udise, first, last) -> dict:
    app_id, app_version = build
    return {"user_id": learner, "device_id": device, "app_id": app_id, "app_version": app_version,
            "school_name": school, "udise_code": udise, "first_seen": pd.Timestamp(first),
            "last_seen": pd.Timestamp(last)}  # fmt: skip


def test_profiles_carry_school_build_language_and_shared_devices_across_drops(tmp_path):
    for learner, days in {"A": ("2025-01-01", "2025-01-09"), "B": ("2025-01-02",), "C": ("2025-01-03",),
                          "D": ("2025-01-04",)}.items():  # fmt: skip
        write(tmp_path, "user_responses", learner, answers(learner, *days), RESPONSE_SCHEMA)
    old, new = ("all.ll.app", "1.1.0"), ("all.ll.app", "1.4.1")
    write(tmp_path, "learner_attributes", "drop1", [
        seen("A", "d1", old, "Govt School", "33260101", "2025-01-01", "2025-01-01"),
        seen("C", "d3", new, None, None, "2025-01-03", "2025-01-03"),
        seen("D", None, (None, None), None, None, "2025-01-04", "2025-01-04"),
    ], LEARNER_ATTRIBUTES_SCHEMA)  # fmt: skip
    write(tmp_path, "learner_attributes", "drop2", [
        # A moved school and updated the app; B answered on A's first device, in another drop.
        seen("A", "d2", new, "Model School", None, "2025-01-09", "2025-01-09"),
        seen("B", "d1", new, None, None, "2025-01-02", "2025-01-02"),
    ], LEARNER_ATTRIBUTES_SCHEMA)  # fmt: skip
    profiles = learner_profiles(open_store(tmp_path), SOURCES).set_index("UserId")
    assert profiles.loc["A", "school_name"] == "Model School"
    assert profiles.loc["A", "udise_code"] == "33260101"  # the latest drop does not name one
    assert profiles.loc["A", "app_build"] == "all.ll.app 1.4.1" and profiles.loc["A", "devices"] == 2
    assert profiles["device"].fillna("unknown").to_dict() == {
        "A": SHARED,
        "B": SHARED,
        "C": OWN,
        "D": "unknown",
    }
    assert pd.isna(profiles.loc["D", "app_build"]) and profiles.loc["D", "devices"] == 0
    assert set(profiles["language"]) == {"en"}
    assert profiles.loc["A", "responses"] == 2 and profiles.loc["A", "start_week"] == "2025-W01"


def test_learners_with_answers_but_no_attributes_yet_still_have_a_profile(tmp_path):
    write(tmp_path, "user_responses", "A", answers("A", "2025-01-01"), RESPONSE_SCHEMA)
    profiles = learner_profiles(open_store(tmp_path), SOURCES)
    assert profiles["UserId"].tolist() == ["A"] and profiles["device"].isna().all()
