"""Incremental re-embedding on the local runtime: a re-upload of the demo sample with 1% of it edited, some
records added and some removed, sends only the edited and added records to the model (asserted from the
emulators' own log of model inputs), updates the others' fields without inference, and the counts add up."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from local.runtime import LocalRuntime
from osbatch.config import PipelineConfig
from osbatch.contracts import JOB_FIELD
from osbatch.dal import JobTable
from osbatch.search.client import opensearch_client
from tests.integration.helpers import OPENAI_BASE, faults, report, set_faults, upload, wait_for_end

pytestmark = pytest.mark.integration
PIPELINE = "e2e-mirror"
FRESH = ("e2e-mirror", "e2e", "e2e-openai")
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "python-docs" / "part-1.jsonl"


def sample_records(tag: str) -> tuple[list[dict[str, Any]], list[bytes]]:
    """The demo sample's valid records, tagged, and its bad lines as they are."""
    records, bad = [], []
    for raw in SAMPLE.read_bytes().splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            bad.append(raw)
            continue
        if (
            isinstance(record, dict)
            and isinstance(record.get("_id"), str)
            and isinstance(record.get("text"), str)
        ):
            records.append({**record, "tag": tag})
        else:
            bad.append(raw)
    return records, bad


def body(records: list[dict[str, Any]], bad: list[bytes] = ()) -> bytes:  # type: ignore[assignment]
    return b"".join(json.dumps(record).encode() + b"\n" for record in records) + b"".join(
        line + b"\n" for line in bad
    )


def conserved(job: dict[str, Any]) -> bool:
    return int(job["records_in"]) == int(job["indexed"]) + int(job.get("unchanged", 0)) + int(
        job["dead_lettered"]
    )


def test_a_re_upload_with_one_percent_edited_embeds_only_what_changed_and_mirrors_the_rest(
    stack: Any, config: PipelineConfig, jobs: JobTable, runtime: LocalRuntime, clean_faults: None
) -> None:
    # Given the demo sample uploaded and indexed
    name = f"sample-{time.time_ns()}.jsonl"
    records, bad = sample_records("v1")
    first_id = upload(stack, config, name, body(records, bad))
    first = wait_for_end(jobs, first_id)
    assert (first["state"], first["indexed"]) == ("COMPLETED", len(records))
    set_faults()  # the model input log starts empty
    # When 1% of its records are edited, 5 added, 4 removed, every tag changed, and it is uploaded again
    second = [{**record, "tag": "v2"} for record in records]
    edited = {index: f"{second[index]['text']} (edited)" for index in range(0, len(second), 100)}
    for index, text in edited.items():
        second[index] = {**second[index], "text": text}
    removed = [second.pop(index)["_id"] for index in (len(second) - 1, len(second) - 2, 51, 50)]
    added = [{"_id": f"added-{n}", "text": f"A new page about topic {n}.", "tag": "v2"} for n in range(5)]
    job_id = upload(stack, config, name, body(second + added, bad))
    job = wait_for_end(jobs, job_id)
    # Then the model saw exactly the edited and the added texts (the emulator's own log)
    seen = faults()
    expected = sorted([*edited.values(), *(record["text"] for record in added)])
    assert seen["model_inputs"] == len(expected)
    assert sorted(seen["model_input_log"]) == expected
    # And the counts add up: records_in = indexed + unchanged + dead_lettered; the removed are deleted
    unchanged = len(records) - len(edited) - len(removed)
    assert (job["state"], job["indexed"], job["unchanged"], job["dead_lettered"]) == (
        "COMPLETED",
        len(expected),
        unchanged,
        len(bad),
    )
    assert conserved(job) and job["deleted"] == len(removed)
    stored = report(stack, job_id)
    assert stored["incremental"]["inputs_saved"] == unchanged and stored["incremental"]["tokens_saved"] > 0
    # And the index holds exactly the new version: new tags on kept vectors, the removed ones gone
    client = opensearch_client(runtime.opensearch.url)
    client.indices.refresh(index=config.sink.index)
    assert client.count(index=config.sink.index)["count"] == len(second) + len(added)
    kept = client.get(index=config.sink.index, id=second[1]["_id"])["_source"]
    # (the job that embedded it stays the first: the second only updated its other fields)
    assert kept["tag"] == "v2" and kept[JOB_FIELD] == first_id and len(kept["chunk_embedding"]) == 384
    assert not any(client.exists(index=config.sink.index, id=doc_id) for doc_id in removed)
    # And the report sets the plan's estimate beside the actuals
    assert stored["estimate"]["sent_to_model"] == len(expected)
    assert stored["actual"]["sent_to_model"] == len(expected) and stored["actual"]["wall_seconds"] > 0


def test_without_mirror_the_removed_records_stay_and_are_counted(
    stack: Any, configs: dict[str, PipelineConfig], jobs: JobTable, runtime: LocalRuntime
) -> None:
    # Given 20 records indexed through a pipeline that keeps what a re-upload lacks (the default)
    config = configs["e2e"]
    name = f"keep-{time.time_ns()}.jsonl"
    records = [{"_id": f"keep-{n}", "text": f"Page {n} of the manual."} for n in range(20)]
    assert wait_for_end(jobs, upload(stack, config, name, body(records)))["state"] == "COMPLETED"
    # When it comes again without two of them
    job = wait_for_end(jobs, upload(stack, config, name, body(records[2:])))
    # Then nothing is embedded again, the two stay in the index, and the report counts them as stale
    assert (job["indexed"], job["unchanged"], job["stale"], job["deleted"]) == (0, 18, 2, 0)
    assert conserved(job)
    client = opensearch_client(runtime.opensearch.url)
    assert client.exists(index=config.sink.index, id="keep-0")


def test_a_token_priced_backend_skips_unchanged_records_and_reports_the_services_tokens(
    stack: Any, configs: dict[str, PipelineConfig], jobs: JobTable, clean_faults: None
) -> None:
    # Given 10 records embedded through the OpenAI Batch API
    config = configs["e2e-openai"]
    name = f"incremental-{time.time_ns()}.jsonl"
    records = [{"_id": f"inc-{n}", "text": f"Entry {n} of the reference."} for n in range(10)]
    first_id = upload(stack, config, name, body(records))
    assert wait_for_end(jobs, first_id)["state"] == "COMPLETED"
    # And the first job's actual tokens are the service's own (usage.prompt_tokens of its output lines)
    assert report(stack, first_id)["actual"]["input_tokens"] > 0
    set_faults()
    # When one record is edited and the file uploaded again
    records[3] = {**records[3], "text": "Entry 3, rewritten."}
    job = wait_for_end(jobs, upload(stack, config, name, body(records)))
    # Then the service saw that one text only (its own log), and the counts add up
    seen = faults(OPENAI_BASE)
    assert (seen["model_inputs"], seen["model_input_log"]) == (1, ["Entry 3, rewritten."])
    assert (job["indexed"], job["unchanged"]) == (1, 9) and conserved(job)
