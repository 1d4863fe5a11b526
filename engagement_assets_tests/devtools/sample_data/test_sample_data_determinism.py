from __future__ import annotations

from pathlib import Path

from engagement_assets.devtools.sample_data import generate_landing


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_and_arguments_give_identical_bytes(tmp_path):
    generate_landing(tmp_path / "a", learners=3, seed=11, malformed=True, target_mb=1.5)
    generate_landing(tmp_path / "b", learners=3, seed=11, malformed=True, target_mb=1.5)
    first, second = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert first.keys() == second.keys()
    assert any(name.startswith("audio/") for name in first)
    assert [name for name in first if first[name] != second[name]] == []


def test_another_seed_gives_other_data(tmp_path):
    generate_landing(tmp_path / "a", learners=2, seed=1, audio=False)
    generate_landing(tmp_path / "b", learners=2, seed=2, audio=False)
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert a["telemetry/all_telemetry_part1.json"] != b["telemetry/all_telemetry_part1.json"]


def test_audio_switch_does_not_change_telemetry(tmp_path):
    generate_landing(tmp_path / "a", learners=2, audio=True)
    generate_landing(tmp_path / "b", learners=2, audio=False)
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    telemetry = [name for name in a if name.startswith(("telemetry/", "sessions/"))]
    assert telemetry and all(a[name] == b[name] for name in telemetry)
    assert not any(name.startswith("audio/") for name in b)


def test_no_work_files_left_behind(landed):
    leftovers = [p.name for p in landed.root.rglob("*") if p.name.startswith(".") or p.suffix == ".part"]
    assert leftovers == []
