"""The benchmark writes its results where it is told and says where it wrote them."""

from __future__ import annotations

from pathlib import Path

from bench import report


def test_results_named_bare_go_to_bench_results_and_are_shown_from_the_checkout() -> None:
    assert report.shown(report.RESULTS / "latest.json") == "bench/results/latest.json"


def test_results_given_a_path_outside_the_checkout_are_written_and_shown_there(
    tmp_path: Path,
) -> None:
    target = tmp_path / "runs" / "deep.json"

    written = report.write(str(target), {"endpoints": {}})

    assert written == target
    assert target.read_text(encoding="utf-8") == '{\n  "endpoints": {}\n}\n'
    assert report.shown(written) == str(target)
