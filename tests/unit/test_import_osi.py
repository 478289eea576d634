"""`osbatch import-osi`: every example pipeline of the public pages becomes a valid osbatch config, with each
field mapped or named with its reason (the examples and their pages: tests/fixtures/osi/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.main import main
from cli.osi_documents import read_connector
from cli.osi_notes import NO_EQUIVALENT
from osbatch.config import Backend, BedrockModelFamily, load_pipeline, parse_pipeline

OSI = Path(__file__).parents[1] / "fixtures" / "osi"
SAGEMAKER_PIPELINE = OSI / "aws-sagemaker-batch-job-pipeline.yaml"
BEDROCK_PROCESSOR = OSI / "aws-ml-inference-processor-bedrock.yaml"
DATA_PREPPER_PROCESSOR = OSI / "data-prepper-ml-inference-sagemaker.yaml"
CONNECTOR = OSI / "aws-sagemaker-batch-connector.txt"
ML = "sagemaker-batch-job-pipeline.processor[0].ml_inference"


def run_import(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["import-osi", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if code == 0 else {}


def reasons(report: dict[str, Any]) -> dict[str, str]:
    return {note["osi"]: note["reason"] for note in report["unmapped"]}


def targets(report: dict[str, Any]) -> dict[str, str]:
    return {note["osi"]: note["osbatch"] for note in report["mapped"]}


def scalar_paths(value: Any, path: str = "") -> list[str]:
    """Every scalar of a YAML document, as import-osi names fields: a.b[0].c."""
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in scalar_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list) and value:
        return [p for i, v in enumerate(value) for p in scalar_paths(v, f"{path}[{i}]")]
    return [path]


def test_the_aws_sagemaker_pipeline_becomes_an_ml_commons_pipeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the AWS page's OSI pipeline and the SageMaker batch connector its model calls (Step 1 of the page)
    out = tmp_path / "imported.yaml"
    # When it is imported
    code, report = run_import(
        [str(SAGEMAKER_PIPELINE), "--connector", str(CONNECTOR), "-o", str(out)], capsys
    )
    # Then the written file is a config osbatch's own model loads, with the pipeline's fields in it
    assert code == 0
    config = load_pipeline(out)
    assert config.name == "sagemaker-batch-job-pipeline"
    assert (config.source.prefix, config.source.text_path) == (
        "sagemaker/sagemaker_djl_batch_input",
        "$.text",
    )
    assert config.inference.backend is Backend.ML_COMMONS
    ml_commons = config.inference.ml_commons
    assert ml_commons is not None and ml_commons.region == "us-east-1"
    assert ml_commons.sagemaker.ModelName == "DJL-Text-Embedding-Model-imageforjsonlines"
    assert ml_commons.sagemaker.TransformResources == {"InstanceCount": 100, "InstanceType": "ml.m4.xlarge"}
    assert (ml_commons.sagemaker.BatchStrategy, ml_commons.sagemaker.MaxConcurrentTransforms) == (
        "SingleRecord",
        100,
    )
    assert (
        config.sink.opensearch.endpoint
        == "https://search-AWStest-offlinebatch-123456789abcdef.us-west-2.es.amazonaws.com"
    )
    assert config.sink.index == "test-nlp-index"
    assert config.sink.field_map == {"chapter": "$.text", "chapter_embedding": "$.SageMakerOutput"}
    # And the report says where each came from
    mapped = targets(report)
    assert mapped[
        "sagemaker-batch-job-pipeline.source.s3.scan.buckets[0].bucket.filter.include_prefix[0]"
    ] == ("source.prefix")
    assert mapped["sagemaker-batch-job-pipeline.sink[0].opensearch.index"] == "sink.index"
    assert mapped["connector.parameters.ModelName"] == "inference.ml_commons.sagemaker.ModelName"
    assert mapped[f"{ML}.service_name"] == "inference.backend"
    # And what it cannot map is named with the reason: source bucket, ML Commons model, output scan
    unmapped = reasons(report)
    assert (
        "s3://name/sagemaker/sagemaker_djl_batch_input s3://<InputBucket>/"
        in unmapped["sagemaker-batch-job-pipeline.source.s3.scan.buckets[0].bucket.name"]
    )
    assert "osbatch registers its own, 'sagemaker-batch-job-pipeline-batch'" in unmapped[f"{ML}.model_id"]
    assert (
        "ingests each job's output itself"
        in unmapped["sagemaker-batch-job-pipeline.source.s3.scan.buckets[1].bucket"]
    )
    assert "dead-letter" in unmapped[f"{ML}.dlq"]
    assert "no conditional routes" in unmapped["sagemaker-batch-job-pipeline.routes"]
    assert (
        "each transform job its own output prefix"
        in unmapped["connector.parameters.TransformOutput.S3OutputPath"]
    )
    # the page's delete_entries, indented into copy_values' entries, is named rather than taken as a deletion
    for index in (2, 3, 4):
        assert (
            "not a from_key/to_key entry"
            in unmapped[f"sagemaker-batch-job-pipeline.processor[1].copy_values.entries[{index}]"]
        )
    # And the JSON's config is the file's
    assert yaml.safe_load(out.read_text()) == report["config"]


def test_the_aws_bedrock_processor_becomes_a_bedrock_pipeline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the AWS page's ml_inference processor example (Bedrock; no source, no sink)
    # When it is imported with the Bedrock model its ML Commons model runs
    code, report = run_import([str(BEDROCK_PROCESSOR), "--model", "amazon.titan-embed-text-v2:0"], capsys)
    # Then the config is valid and runs on osbatch's Bedrock backend with the processor's retry window
    assert code == 0
    config = parse_pipeline(report["config"])
    assert config.inference.backend is Backend.BEDROCK
    bedrock = config.inference.bedrock
    assert bedrock is not None and bedrock.model_id == "amazon.titan-embed-text-v2:0"
    assert bedrock.family is BedrockModelFamily.TITAN_EMBED_V2
    assert config.inference.retry_time_window_seconds == 9 * 60
    assert (
        config.sink.opensearch.endpoint
        == "https://AWStest-offlinebatch-123456789abcdefg.us-west-2.es.amazonaws.com"
    )
    assert config.sink.field_map == {"text": "$.text", "embedding": "$.modelOutput.embedding"}
    # And the fields osbatch had to choose are reported with their values
    chosen = {note["osbatch"]: note["value"] for note in report["defaulted"]}
    assert chosen["sink.index"] == config.sink.index == "aws-ml-inference-processor"
    assert chosen["source.prefix"] == config.source.prefix == "input/aws-ml-inference-processor/"
    # And the unmappable ones are named: the ML Commons model, the output path, the DLQ, the bucket condition
    unmapped = reasons(report)
    assert (
        "calls Bedrock's CreateModelInvocationJob with 'amazon.titan-embed-text-v2:0'"
        in unmapped["processor[0].ml_inference.model_id"]
    )
    assert "stack's output bucket" in unmapped["processor[0].ml_inference.output_path"]
    assert "bucket 'amzn-s3-demo-bucket'" in unmapped["processor[0].ml_inference.ml_when"]
    assert "dead-letter" in unmapped["processor[0].ml_inference.dlq"]


def test_the_data_prepper_example_takes_its_sagemaker_settings_from_the_connector(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given Data Prepper's ml_inference example (SageMaker) and a SageMaker batch connector
    # When it is imported
    code, report = run_import([str(DATA_PREPPER_PROCESSOR), "--connector", str(CONNECTOR)], capsys)
    # Then it runs through ML Commons with the connector's transform settings, on the processor's domain
    assert code == 0
    config = parse_pipeline(report["config"])
    assert config.inference.ml_commons is not None
    assert config.inference.ml_commons.sagemaker.ModelName == "DJL-Text-Embedding-Model-imageforjsonlines"
    assert config.sink.opensearch.endpoint == "https://search-ml-inference-test.us-west-2.es.amazonaws.com"
    assert "bucket 'offlinebatch'" in reasons(report)["processor[0].ml_inference.ml_when"]
    assert (
        "'9t4AbpYBQB1BoSOe8g8N' is registered on the OSI pipeline's domain"
        in reasons(report)["processor[0].ml_inference.model_id"]
    )


@pytest.mark.parametrize(
    "args",
    [
        [str(SAGEMAKER_PIPELINE), "--connector", str(CONNECTOR)],
        [str(BEDROCK_PROCESSOR), "--model", "amazon.titan-embed-text-v2:0"],
        [str(DATA_PREPPER_PROCESSOR), "--model", "minilm-embedder"],
    ],
)
def test_every_field_of_every_example_is_mapped_or_named(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an example pipeline / When it is imported
    code, report = run_import(args, capsys)
    assert code == 0
    named = [note["osi"] for note in report["mapped"] + report["unmapped"]]
    fields = scalar_paths(yaml.safe_load(Path(args[0]).read_text()))
    if "--connector" in args:
        fields += scalar_paths(read_connector(CONNECTOR), "connector")
    # Then each of its fields (and its connector's) is under a path the report names
    for field in fields:
        assert any(field == p or field.startswith((f"{p}.", f"{p}[")) for p in named), field
    # And every field it leaves out has a reason of its own, not the catch-all
    assert all(note["reason"] and note["reason"] != NO_EQUIVALENT for note in report["unmapped"])


def test_a_field_no_rule_knows_is_named_rather_than_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the Bedrock example with an option osbatch has never heard of
    path = write(tmp_path, bedrock_processor(batch_size_hint=500))
    # When it is imported
    code, report = run_import([str(path), "--model", "amazon.titan-embed-text-v2:0"], capsys)
    # Then the option is named as not mapped
    assert code == 0
    assert reasons(report)["processor[0].ml_inference.batch_size_hint"] == NO_EQUIVALENT


def test_without_an_output_file_the_config_goes_to_stdout_and_the_report_to_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an example / When it is imported without -o or --json
    code = main(["import-osi", str(BEDROCK_PROCESSOR), "--model", "amazon.titan-embed-text-v2:0"])
    out, err = capsys.readouterr()
    # Then stdout is the config alone (its comments name what was left out), and stderr the report
    assert code == 0
    assert parse_pipeline(yaml.safe_load(out)).inference.backend is Backend.BEDROCK
    assert "#   processor[0].ml_inference.dlq: osbatch dead-letters" in out
    assert err.startswith("mapped (") and "not mapped (" in err and "chosen by osbatch (" in err


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "osi.yaml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def bedrock_processor(**changes: Any) -> dict[str, Any]:
    ml = yaml.safe_load(BEDROCK_PROCESSOR.read_text())["processor"][0]["ml_inference"]
    ml.update(changes)
    return {"processor": [{"ml_inference": {k: v for k, v in ml.items() if v is not None}}]}


@pytest.mark.parametrize(
    ("document", "extra", "message"),
    [
        ("processor: [ml_inference: {host: x", [], "not valid YAML"),
        ({"p": {"source": {"s3": {}}, "processor": [{"copy_values": {}}]}}, [], "no sub-pipeline uses"),
        (
            bedrock_processor(model_id=None),
            [],
            "model_id: missing; Data Prepper's ml_inference processor requires",
        ),
        (bedrock_processor(aws={"sts_role_arn": "r"}), [], "aws.region: missing"),
        (bedrock_processor(action_type="predict"), [], "batch_predict) only"),
        (bedrock_processor(service_name="sagemaker"), [], "pass --connector FILE"),
        (bedrock_processor(), [], "runs a Bedrock model id the pipeline does not name"),
        (bedrock_processor(), ["--model", "meta.llama3"], "has no osbatch request template"),
        (
            bedrock_processor(),
            ["--model", "amazon.titan-embed-text-v2:0", "--name", "Bad_Name"],
            "name: String",
        ),
    ],
)
def test_a_file_that_cannot_be_imported_exits_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: Any, extra: list[str], message: str
) -> None:
    # Given a file that is not YAML, has no ml_inference, misses a required field or gives an invalid config
    path = write(tmp_path, document)
    # When it is imported
    code = main(["import-osi", str(path), *extra])
    # Then it exits 2 with one line naming the reason, and writes nothing to stdout
    out, err = capsys.readouterr()
    assert code == 2
    assert message in err
    assert out == ""
