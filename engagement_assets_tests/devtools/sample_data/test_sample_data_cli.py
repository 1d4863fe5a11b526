from __future__ import annotations

import json

from engagement_assets.devtools.sample_data.cli import main


def test_cli_writes_a_landing_area_and_prints_a_summary(tmp_path, capsys):
    out = tmp_path / "landing"
    assert main(["--out", str(out), "--learners", "2", "--seed", "3", "--no-audio", "--with-malformed"]) == 0
    printed = capsys.readouterr().out
    assert "telemetry/all_telemetry_part1.json" in printed and "MB/s" in printed
    summary = json.loads((out / "_generator_summary.json").read_text(encoding="utf-8"))
    assert summary["arguments"]["seed"] == 3 and summary["arguments"]["malformed"] is True
    assert not (out / "audio").exists()


def test_cli_format_and_gzip(tmp_path, capsys):
    out = tmp_path / "landing"
    main(["--out", str(out), "--learners", "1", "--no-audio", "--format", "json", "--gzip", "--files", "2"])
    assert sorted(p.name for p in (out / "telemetry").iterdir()) == [
        "all_telemetry_part1.json.gz",
        "all_telemetry_part2.json.gz",
    ]
