from __future__ import annotations

from pathlib import Path

import pytest

from engagement_assets.devtools.sample_data import LandingSummary, generate_landing

from .reference_stage1 import events_of, rows_of, unwrap


class Landed:
    """A generated landing area with its summary, and the parsed rows of its regular export files."""

    def __init__(self, root: Path, summary: LandingSummary) -> None:
        self.root = root
        self.summary = summary
        self.rows_by_file = {
            f.path: rows_of(root / f.path)[0] for f in summary.files if not f.malformed and f.records
        }

    def rows(self):
        for path, rows in self.rows_by_file.items():
            for row in rows:
                yield path, row

    def events(self):
        """(file, row, event) with extended JSON unwrapped in the event."""
        for path, row in self.rows():
            for event in events_of(row):
                yield path, row, unwrap(event)

    def responses(self):
        for path, row, event in self.events():
            if event["eid"] == "RESPONSE":
                yield path, row, event


@pytest.fixture(scope="session")
def landed(tmp_path_factory) -> Landed:
    root = tmp_path_factory.mktemp("landing")
    summary = generate_landing(root, learners=5, seed=7, malformed=True)
    return Landed(root, summary)


@pytest.fixture(scope="session")
def landed_default(tmp_path_factory) -> Landed:
    """The CLI defaults (8 learners, seed 7), without audio to stay fast."""
    root = tmp_path_factory.mktemp("landing-default")
    return Landed(root, generate_landing(root, audio=False))
