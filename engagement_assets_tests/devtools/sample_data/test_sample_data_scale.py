from __future__ import annotations

import gzip
import json

from engagement_assets.devtools.sample_data import generate_landing


def test_target_mb_pads_the_telemetry_to_about_that_size(tmp_path):
    summary = generate_landing(tmp_path, learners=4, target_mb=5, audio=False)
    assert 5_000_000 <= summary.telemetry_bytes_uncompressed <= 5_500_000
    on_disk = sum((tmp_path / f.path).stat().st_size for f in summary.files)
    assert on_disk == summary.telemetry_bytes_on_disk < summary.telemetry_bytes_uncompressed
    assert sum(summary.sessions["files"].values()) == summary.sessions["rows"]


def test_gzip_everything_and_single_format(tmp_path):
    summary = generate_landing(tmp_path, learners=2, audio=False, files=3, formats="jsonl", gzip_all=True)
    assert [f.path for f in summary.files] == [f"telemetry/all_telemetry_part{i}.jsonl.gz" for i in (1, 2, 3)]
    for f in summary.files:
        lines = gzip.decompress((tmp_path / f.path).read_bytes()).decode().splitlines()
        assert len([json.loads(line) for line in lines if line]) == f.records


def test_clean_removes_an_earlier_run(tmp_path):
    generate_landing(tmp_path, learners=2, audio=False, files=6)
    generate_landing(tmp_path, learners=2, audio=False, files=2, clean=True)
    assert len(list((tmp_path / "telemetry").iterdir())) == 2
