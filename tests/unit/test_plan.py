"""`osbatch plan`'s product side (osbatch.planning): records judged as Prepare judges them, the remote jobs
Prepare would create, passages and tokens, and time and cost from the dated tables."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from typing import Any

import pytest

from local.model import packaged
from osbatch.chunking import Chunker, TokenizerJsonCounter
from osbatch.config import PipelineConfig, parse_pipeline
from osbatch.planning.layout import TooManyRemoteJobs
from osbatch.planning.plan import Plan, offline_backend, plan_files
from osbatch.planning.scan import SNIFF_LINES, EstimatedTokens, NotJsonl, Tokens
from osbatch.planning.tables import Price, Rate, load_prices, load_rates
from tests.unit.helpers import chunking_pipeline_dict, pipeline_dict

TITAN = {"model_id": "amazon.titan-embed-text-v2:0", "family": "titan-embed-text-v2"}


def jsonl(*records: Any) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def docs(count: int, text: str = "a short text") -> bytes:
    return jsonl(*({"_id": f"d{n}", "text": text} for n in range(count)))


def plan(
    config: PipelineConfig,
    *files: tuple[str, bytes],
    tokens: Tokens | None = None,
    chunker: Chunker | None = None,
    prices: Any = None,
    rates: Any = None,
) -> Plan:
    def pieces(data: bytes) -> Iterable[bytes]:
        return (data[start : start + 7] for start in range(0, len(data), 7))  # lines split across pieces

    return plan_files(
        [(name, pieces(data)) for name, data in files],
        config=config,
        backend=offline_backend(config),
        tokens=tokens or EstimatedTokens(),
        tokens_how="test",
        tokens_exact=False,
        chunker=chunker,
        prices=load_prices() if prices is None else prices,
        rates=load_rates() if rates is None else rates,
    )


def minilm() -> TokenizerJsonCounter:
    return TokenizerJsonCounter.from_file(packaged.sentence_transformers_folder() / "tokenizer.json")


def test_bad_lines_are_counted_with_the_reasons_prepare_would_dead_letter_them_with() -> None:
    # Given a file with two good records, a blank line and one bad line of each kind Prepare refuses
    data = (
        jsonl({"_id": 1, "text": "one"})
        + b"\n"
        + b'{"_id": 2, "text": \n'
        + jsonl(["an", "array"], {"text": "no id"}, {"_id": 3, "text": None}, {"_id": 4, "text": "four"})
        + b'{"_id": 5, "text": "\xff"}\n'
    )
    # When it is planned
    result = plan(parse_pipeline(pipeline_dict()), ("a.jsonl", data))
    # Then records, valid records, blank lines and bad lines add up as Prepare counts them
    assert (result.records, result.valid, result.blank_lines, result.bad_lines) == (7, 2, 1, 5)
    # And each bad line has Prepare's own reason, with its line number
    assert result.bad_reasons == {
        "malformed JSON: unexpected end of data at column 20": 1,
        "expected a JSON object, got an array": 1,
        "missing id at $._id": 1,
        "text at $.text is null, expected a string": 1,
        "not UTF-8: invalid start byte at byte 20": 1,
    }
    assert [(bad["line"], bad["stage"]) for bad in result.bad_examples] == [
        (3, "parse"),
        (4, "parse"),
        (5, "parse"),
        (6, "parse"),
        (8, "parse"),
    ]


def test_remote_jobs_are_the_ones_prepare_would_create_within_the_backends_per_job_limits() -> None:
    # Given an OpenAI pipeline whose batches take one file of at most 4 requests
    openai = {"api_key_secret": "k", "model": "text-embedding-3-small", "max_requests_per_file": 4}
    config = parse_pipeline(pipeline_dict(inference={"backend": "openai", "openai": openai}))
    # When 10 records are planned
    result = plan(config, ("a.jsonl", docs(10)))
    # Then it takes 3 batches of 4, 4 and 2 requests, each one part
    assert [(job.index, job.parts, job.records) for job in result.remote_jobs] == [
        (0, 1, 4),
        (1, 1, 4),
        (2, 1, 2),
    ]
    assert result.limits["max_records_per_job"] == 4


def test_the_last_bedrock_job_is_rebalanced_to_the_minimum_as_prepare_does() -> None:
    # Given Bedrock with at least 3 and at most 6 records per job
    bedrock = {**TITAN, "quotas": {"min_records_per_job": 3, "max_records_per_job": 6}}
    config = parse_pipeline(pipeline_dict(inference={"backend": "bedrock", "bedrock": bedrock}))
    # When 7 records are planned (6 + 1 before rebalancing)
    result = plan(config, ("a.jsonl", docs(7)))
    # Then the last job was brought up to the minimum from the one before
    assert [job.records for job in result.remote_jobs] == [4, 3]
    assert sum(job.bytes for job in result.remote_jobs) > 0


def test_each_file_is_its_own_upload_with_its_own_remote_jobs() -> None:
    # Given two files / When they are planned together
    result = plan(parse_pipeline(pipeline_dict()), ("a.jsonl", docs(3)), ("b.jsonl", docs(2)))
    # Then each has its own job 0, and the counts are summed
    assert [(job.file, job.index, job.records) for job in result.remote_jobs] == [
        ("a.jsonl", 0, 3),
        ("b.jsonl", 0, 2),
    ]
    assert result.valid == 5


def test_an_upload_past_max_remote_jobs_is_refused_as_prepare_would_refuse_it() -> None:
    # Given OpenAI batches of at most 2 requests, and at most 1 remote job per upload
    openai = {"api_key_secret": "k", "model": "text-embedding-3-small", "max_requests_per_file": 2}
    config = parse_pipeline(
        pipeline_dict(inference={"backend": "openai", "openai": openai, "max_remote_jobs": 1})
    )
    # When 3 records are planned / Then the plan fails with Prepare's reason
    with pytest.raises(TooManyRemoteJobs, match=r"inference\.max_remote_jobs"):
        plan(config, ("a.jsonl", docs(3)))


def test_tokens_are_counted_by_the_models_tokenizer_where_there_is_one() -> None:
    # Given MiniLM's own tokenizer and a text of known wordpieces
    text = "The quick brown fox jumps over the lazy dog."
    # When two records of it are planned
    result = plan(parse_pipeline(pipeline_dict()), ("a.jsonl", docs(2, text)), tokens=minilm())
    # Then the tokens are exactly the tokenizer's (10 words and a full stop), not the byte estimate
    assert result.tokens == 2 * 10
    assert EstimatedTokens().count(text) == 11  # 44 bytes / 4


def test_passages_are_counted_where_the_pipeline_chunks_and_unchunkable_records_are_bad_lines() -> None:
    # Given a pipeline that splits on blank lines, then into passages of at most 5 wordpieces
    data = chunking_pipeline_dict(
        {"algorithms": [{"delimiter": {}}, {"fixed_token_length": {"token_limit": 5}}]}
    )
    config = parse_pipeline(data)
    assert config.source.chunking is not None
    counter = minilm()
    chunker = Chunker(config.source.chunking, counter)
    text = "one two three\n\nfour five six seven eight nine ten"
    records = jsonl({"_id": 1, "text": text}, {"_id": 2, "text": "   "})
    # When it is planned
    result = plan(config, ("a.jsonl", records), tokens=counter, chunker=chunker)
    # Then the passages are the chunker's (3 words; then 7 words in 5 + 2), and their tokens the sum of theirs
    expected = list(chunker.passages(text))
    assert result.passages == len(expected) == 3
    assert result.tokens == sum(counter.count(passage.text) for passage in expected)
    # And the blank text is a bad line at stage chunk, with the chunker's reason
    assert result.bad_examples == [
        {
            "file": "a.jsonl",
            "line": 2,
            "stage": "chunk",
            "reason": "the text is empty or only whitespace: there is nothing to embed",
        }
    ]


def test_a_file_that_is_not_jsonl_is_an_error_that_says_so() -> None:
    # Given a CSV file / When it is planned / Then the error names the file and its first line's reason
    with pytest.raises(
        NotJsonl, match=r"csv\.txt is not JSONL: none of its first 3 lines.*\(line 1: malformed"
    ):
        plan(parse_pipeline(pipeline_dict()), ("csv.txt", b"a,b\n1,2\n3,4\n"))


def test_a_long_file_with_no_json_object_in_its_first_lines_is_refused_before_it_is_read_whole() -> None:
    # Given a file of JSON arrays, longer than what is sniffed, whose only object comes last
    data = b"[1]\n" * (SNIFF_LINES + 5) + jsonl({"_id": 1, "text": "late"})
    # When it is planned / Then it is refused after SNIFF_LINES lines
    with pytest.raises(NotJsonl, match=f"none of its first {SNIFF_LINES} lines"):
        plan(parse_pipeline(pipeline_dict()), ("arrays.jsonl", data))


def test_a_file_with_some_bad_lines_is_jsonl_with_bad_lines() -> None:
    # Given a file whose first line is broken but others are records / When planned
    result = plan(parse_pipeline(pipeline_dict()), ("a.jsonl", b"not json\n" + docs(2)))
    # Then it is planned, the broken line counted as bad
    assert (result.valid, result.bad_lines) == (2, 1)


def rate(value: float, kind: str = "assumption") -> Rate:
    return Rate(value=value, kind=kind, date=datetime.date(2026, 1, 2), source="test")  # type: ignore[arg-type]


def test_token_priced_backends_cost_tokens_times_the_dated_price() -> None:
    # Given Bedrock Titan V2 at $0.02 per million tokens, read on 2026-01-02
    config = parse_pipeline(pipeline_dict(inference={"backend": "bedrock", "bedrock": TITAN}))
    price = Price(
        usd=0.02, per="million_tokens", date=datetime.date(2026, 1, 2), source="https://example.com/p"
    )
    prices = {"bedrock": {"amazon.titan-embed-text-v2:0": price}}
    # When 250 records of 40 bytes each (10 estimated tokens) are planned
    result = plan(config, ("a.jsonl", docs(250, "x" * 40)), prices=prices)
    # Then the cost is 2,500 tokens at that price, and names the price's date and source
    assert result.tokens == 2500
    assert result.cost.usd == pytest.approx(2500 / 1e6 * 0.02, abs=1e-4)
    assert result.cost.price == price


def test_sagemaker_costs_instance_hours_times_the_instance_price() -> None:
    # Given 2 x ml.m5.xlarge (4 vCPUs) at $0.23 an hour, embedding 1,000 tokens per vCPU-second
    inference = pipeline_dict()["inference"]
    inference["sagemaker"] = {
        "ModelName": "m",
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2},
    }
    config = parse_pipeline(pipeline_dict(inference=inference))
    rates = {**load_rates(), "sagemaker": {"queue_seconds": rate(60), "tokens_per_vcpu_second": rate(1000)}}
    # When 8,000 records of 10 tokens are planned: 80,000 tokens at 8,000 tokens/s is 10 s on 2 instances
    result = plan(config, ("a.jsonl", docs(8000, "x" * 40)), rates=rates)
    # Then the cost is 20 instance-seconds at the table's price
    price = load_prices()["sagemaker"]["ml.m5.xlarge"]
    assert result.cost.usd == pytest.approx(20 / 3600 * price.usd, abs=1e-4)
    assert "2 x ml.m5.xlarge" in result.cost.basis
    # And the wall time is one queue wave, the inference, and ingest at the table's rate
    ingest = load_rates()["ingest"]["docs_per_second"].value
    assert result.time.queue_seconds == 60
    assert result.time.inference_seconds == 10
    assert result.time.ingest_seconds == pytest.approx(8000 / ingest, abs=0.1)
    assert set(result.time.rates) == {
        "sagemaker.queue_seconds",
        "sagemaker.tokens_per_vcpu_second",
        "ingest.docs_per_second",
    }


def test_queue_time_is_paid_once_per_wave_of_jobs_in_flight() -> None:
    # Given 1-request batches and at most 2 in flight, each queued 100 s
    openai = {"api_key_secret": "k", "model": "text-embedding-3-small", "max_requests_per_file": 1}
    config = parse_pipeline(
        pipeline_dict(inference={"backend": "openai", "openai": openai, "max_jobs_in_flight": 2})
    )
    rates = {**load_rates(), "openai": {"queue_seconds": rate(100), "tokens_per_second": rate(10)}}
    # When 5 records (5 batches) are planned / Then 3 waves queue
    assert plan(config, ("a.jsonl", docs(5)), rates=rates).time.queue_seconds == 300


def test_a_model_without_a_price_gets_no_cost_and_says_why() -> None:
    # Given an OpenAI model the price table does not list
    openai = {"api_key_secret": "k", "model": "my-own-embedder"}
    config = parse_pipeline(pipeline_dict(inference={"backend": "openai", "openai": openai}))
    # When planned / Then the cost is unknown, never guessed, and the reason names the entry and the fix
    cost = plan(config, ("a.jsonl", docs(1))).cost
    assert cost.usd is None
    assert (
        cost.why_not is not None and "openai.my-own-embedder" in cost.why_not and "--prices" in cost.why_not
    )


def test_the_files_bytes_are_counted_whether_or_not_it_ends_in_a_newline() -> None:
    # Given the same records with and without a final newline / When each is planned
    data = docs(3)
    ended, unended = (plan(parse_pipeline(pipeline_dict()), ("a.jsonl", body)) for body in (data, data[:-1]))
    # Then each counts its own bytes, and the same records
    assert (ended.bytes, unended.bytes) == (len(data), len(data) - 1)
    assert ended.valid == unended.valid == 3
