"""bench/run.py: which scripts it runs, in which modes, and how it reads and totals their verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import run as runner

BENCH = Path(runner.__file__).resolve().parent


def write_bench(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(body, encoding="utf-8")


def test_every_script_with_a_main_block_is_a_bench_and_its_parts_are_not(tmp_path: Path) -> None:
    # Given a bench, a part of a bench (no main block), the runner itself and a new bench nobody declared
    write_bench(tmp_path, "embed", 'def main(): ...\n\nif __name__ == "__main__":\n    main()\n')
    write_bench(tmp_path, "ingest_memory", "def main(work): ...\n")
    write_bench(tmp_path, "run", 'if __name__ == "__main__":\n    pass\n')
    write_bench(tmp_path, "cli_startup", "if __name__ == '__main__':\n    pass\n")

    # When the runner looks for benches there
    found = runner.benches(tmp_path)

    # Then it finds the two programs, and neither the part nor itself
    assert found == ["cli_startup", "embed"]


def test_the_shipped_benches_run_in_every_mode_with_the_runtime_ones_last() -> None:
    # Given the benches in bench/
    names = runner.benches()

    # When their runs are planned
    runs = runner.planned_runs(names)
    labels = [run.label() for run in runs]

    # Then each mode of ingest.py is a run of its own, the parts of benches are not run,
    assert {"embed", "ingest", "ingest --memory", "ingest --node", "mapping", "completion_delay"} <= set(
        labels
    )
    assert not {"ingest_memory", "ingest_node", "node_contenders", "machine", "run"} & set(labels)
    # and the runs that need the runtime come after all the others
    needs_runtime = [run.mode.needs_runtime for run in runs]
    assert needs_runtime == sorted(needs_runtime)
    assert {label for run, label in zip(runs, labels, strict=True) if run.mode.needs_runtime} >= {
        "ingest --node",
        "completion_delay",
    }


@pytest.mark.parametrize("name", runner.benches())
def test_every_bench_offers_a_quick_version(name: str) -> None:
    # Given a bench of bench/ / When the runner builds its quick command line / Then --quick is passed to it
    for run in runner.planned_runs([name]):
        assert run.argv(quick=True)[-1] == "--quick"
        assert "--quick" not in run.argv(quick=False)


def test_verdict_lines_are_read_and_other_lines_are_not() -> None:
    # Given a bench's output: figures, verdict lines (one whose figure has parentheses of its own)
    output = [
        "cpu: Some CPU, 2 cores (x86_64; avx2)\n",
        "  orjson (shipped)   8668 lines/s\n",
        "min cosine vs sentence-transformers, 20 reference vectors: 0.9963 (target >= 0.99): PASS\n",
        "sagemaker event path: 1.7 s (1.1-1.8), polls [1, 1] (target < 5 s): FAIL\n",
    ]

    # When the runner reads it
    verdicts = runner.verdicts_in(output)

    # Then it keeps exactly the two verdicts, split into name, figure, target and result
    assert verdicts == [
        runner.Verdict(
            "min cosine vs sentence-transformers, 20 reference vectors", "0.9963", ">= 0.99", "PASS"
        ),
        runner.Verdict("sagemaker event path", "1.7 s (1.1-1.8), polls [1, 1]", "< 5 s", "FAIL"),
    ]


def run_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> runner.Outcome:
    write_bench(tmp_path, "fake", body)
    monkeypatch.setattr(runner, "BENCH_DIR", tmp_path)
    return runner.execute(runner.Run("fake", runner.Mode()), quick=False)


def test_a_bench_that_crashes_after_a_pass_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bench that prints a PASS, then dies
    body = 'print("speed: 2x (target >= 1x): PASS")\nraise SystemExit(3)\n'

    # When the runner runs it
    outcome = run_script(tmp_path, monkeypatch, body)

    # Then the PASS is kept, an ERROR is added and the outcome counts as failed
    assert [verdict.result for verdict in outcome.verdicts] == ["PASS", "ERROR"]
    assert outcome.failed


def test_a_bench_without_verdicts_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a bench that exits 0 but prints figures only
    outcome = run_script(tmp_path, monkeypatch, 'print("ratio: 3x")\n')

    # Then it did not tell whether it met its targets: an ERROR
    assert [verdict.result for verdict in outcome.verdicts] == ["ERROR"]
    assert outcome.failed


def test_a_fail_fails_the_run_and_the_summary_counts_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a bench with one PASS and one FAIL, exiting 1 as benches do on a FAIL
    body = 'print("a: 1 (target 1): PASS")\nprint("b: 0 (target 1): FAIL")\nraise SystemExit(1)\n'
    outcome = run_script(tmp_path, monkeypatch, body)

    # When the summary is made, with a skipped bench beside it
    skipped = runner.Outcome(
        runner.Run("other", runner.Mode()), [runner.Verdict("not run", "why", "-", "SKIP")]
    )
    lines = runner.summary([outcome, skipped], minutes=1.0, quick=True)

    # Then the FAIL alone fails it (exit 1 is what a FAIL means, no ERROR), and the totals say so
    assert [verdict.result for verdict in outcome.verdicts] == ["PASS", "FAIL"]
    assert outcome.failed and not skipped.failed
    assert lines[-1] == "1 PASS, 1 FAIL, 0 ERROR, 1 SKIP"
