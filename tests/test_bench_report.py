"""The benchmark writes its results where it is told and says where it wrote them."""

from __future__ import annotations

from pathlib import Path

from bench import report
from bench.drive import Measurement


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


def _rounds(*rps: float) -> list[Measurement]:
    return [Measurement(requests=int(r * 5), seconds=5, p50_ms=1, p99_ms=2, errors=0) for r in rps]


def test_taskapi_is_rated_against_the_floor_by_the_median_of_paired_rounds() -> None:
    results = {
        "get_task": {
            "taskapi": _rounds(100, 300, 200),
            "fastapi": _rounds(50, 100, 100),
            "floor": _rounds(1000, 600, 400),
        }
    }

    summary = report.summarise(results)
    shown = report.table(summary, {"get_task": "get one task"})

    ours = summary["get_task"]["taskapi"]
    assert (ours["ratio_vs_floor"], ours["ratio_vs_fastapi"]) == (0.5, 2.0)  # 0.1, 0.5, 0.5
    assert "ratio_vs_starlette" not in ours
    assert shown.splitlines()[0].endswith("| taskapi/FastAPI | taskapi/floor |")
    assert shown.splitlines()[-1].endswith("| 2.00x | 0.50x |")


def test_a_round_that_got_no_answer_leaves_no_ratio_and_is_flagged_in_the_table() -> None:
    results = {
        "get_task": {
            "taskapi": _rounds(100, 300, 200),
            "floor": _rounds(1000, 0, 400),
        }
    }

    summary = report.summarise(results)
    shown = report.table(summary, {"get_task": "get one task"})

    assert "ratio_vs_floor" not in summary["get_task"]["taskapi"]
    assert summary["get_task"]["floor"]["unanswered_rounds"] == 1
    assert "(1 rounds unanswered!)" in shown
    assert shown.splitlines()[-1].endswith("| - |")
