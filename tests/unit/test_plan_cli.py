"""`osbatch plan` on the command line: it reads files as Prepare would, prints or emits JSON, submits
nothing, and turns bad input into one clear line and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from tests.unit.helpers import REPO

SAMPLE = REPO / "samples" / "python-docs"


def test_the_demo_sample_is_planned_with_counts_jobs_time_and_a_dated_cost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the demo sample and its pipeline / When it is planned as JSON
    code = main(
        [
            "plan",
            str(SAMPLE / "part-1.jsonl"),
            str(SAMPLE / "part-2.jsonl"),
            "--pipeline",
            "python-docs",
            "--json",
        ]
    )
    result = json.loads(capsys.readouterr().out)
    # Then the counts are the sample's (its bad lines are there on purpose), and nothing else ran
    assert code == 0
    assert (result["records"], result["valid"], result["bad_lines"]) == (2645, 2640, 5)
    # And MiniLM's own tokenizer counted the tokens, one SageMaker job per uploaded file
    assert result["tokens_exact"] is True
    assert [job["records"] for job in result["remote_jobs"]] == [1320, 1320]
    # And the cost names the price's date and source
    assert result["cost"]["usd"] > 0
    assert result["cost"]["price"]["date"] and result["cost"]["price"]["source"].startswith("https://")


def test_the_printed_plan_names_every_figures_date(capsys: pytest.CaptureFixture[str]) -> None:
    # Given the demo sample / When it is planned as text
    assert main(["plan", str(SAMPLE / "part-1.jsonl"), "--pipeline", "python-docs"]) == 0
    out = capsys.readouterr().out
    # Then the cost and every rate it rests on carry a date
    cost = next(line for line in out.splitlines() if line.startswith("estimated cost:"))
    assert "prices of 20" in cost
    rates = [line for line in out.splitlines() if line.startswith("  ") and " = " in line and "(" in line]
    assert rates and all(", 20" in line for line in rates)


def test_a_missing_file_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # When a file that does not exist is planned / Then exit 2 and one line naming it
    code = main(["plan", str(tmp_path / "nope.jsonl"), "--pipeline", "python-docs"])
    assert code == 2
    assert capsys.readouterr().err == f"osbatch: error: {tmp_path / 'nope.jsonl'}: no such file\n"


def test_a_file_that_is_not_jsonl_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a CSV file
    path = tmp_path / "table.csv"
    path.write_text("id,text\n1,hello\n")
    # When it is planned / Then exit 2 and a line saying it is not JSONL
    assert main(["plan", str(path), "--pipeline", "python-docs"]) == 2
    assert "table.csv is not JSONL" in capsys.readouterr().err


def test_an_undated_price_override_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a price override without a date
    prices = tmp_path / "prices.yaml"
    prices.write_text("sagemaker:\n  ml.m5.xlarge: {usd: 1, per: instance_hour, source: me}\n")
    # When the sample is planned with it / Then exit 2 naming the undated entry
    code = main(["plan", str(SAMPLE / "part-1.jsonl"), "--pipeline", "python-docs", "--prices", str(prices)])
    assert code == 2
    assert "sagemaker.ml.m5.xlarge has no date" in capsys.readouterr().err


def test_an_s3_object_is_planned_and_a_missing_key_is_one_clear_error(
    s3: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the sample in a bucket (moto), and the default client's region set
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3.put_object(Bucket="osb-in", Key="input/part-1.jsonl", Body=(SAMPLE / "part-1.jsonl").read_bytes())
    # When the object is planned / Then it is read as the local file is
    assert main(["plan", "s3://osb-in/input/part-1.jsonl", "--pipeline", "python-docs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] == 1320
    # And a key that does not exist is one clear line, exit 2
    assert main(["plan", "s3://osb-in/input/nope.jsonl", "--pipeline", "python-docs"]) == 2
    assert capsys.readouterr().err == "osbatch: error: s3://osb-in/input/nope.jsonl: no such key\n"


def test_the_token_estimate_can_be_asked_for_and_is_labelled_as_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the demo sample, whose pipeline's model has its own tokenizer
    args = ["plan", str(SAMPLE / "part-1.jsonl"), "--pipeline", "python-docs", "--json"]
    # When it is planned with the estimate, and exactly
    assert main([*args, "--tokens", "estimate"]) == 0
    estimated = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    exact = json.loads(capsys.readouterr().out)
    # Then the estimate says it is one, and differs from the exact count
    assert estimated["tokens_exact"] is False and estimated["tokens_counted_by"].startswith("estimate")
    assert exact["tokens_exact"] is True and estimated["tokens"] != exact["tokens"]


def test_a_pipelines_own_estimates_override_the_tables_and_are_checked_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the demo pipeline with its own instance price, and a copy whose price has no date
    config = (REPO / "pipelines" / "python-docs.yaml").read_text()
    priced = tmp_path / "priced.yaml"
    priced.write_text(
        config
        + "estimates:\n  prices:\n    sagemaker:\n      ml.m5.xlarge: "
        + "{usd: 2.3, per: instance_hour, vcpus: 4, date: 2027-01-02, source: our contract}\n"
    )
    undated = tmp_path / "undated.yaml"
    undated.write_text(
        config
        + "estimates:\n  prices:\n    sagemaker:\n"
        + "      ml.m5.xlarge: {usd: 2.3, per: instance_hour, source: us}\n"
    )
    args = ["plan", str(SAMPLE / "part-1.jsonl"), "--pipeline", "python-docs"]
    # When the sample is planned under each
    assert main(["--pipelines", str(priced), *args, "--json"]) == 0
    price = json.loads(capsys.readouterr().out)["cost"]["price"]
    code = main(["--pipelines", str(undated), *args])
    # Then the pipeline's price is used, with its date; and the undated one is refused, named
    assert (price["usd"], price["date"], price["source"]) == (2.3, "2027-01-02", "our contract")
    assert code == 2
    assert (
        "pipeline python-docs: estimates.prices: sagemaker.ml.m5.xlarge has no date"
        in capsys.readouterr().err
    )
