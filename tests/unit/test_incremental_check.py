"""Incremental re-embedding (osbatch.incremental): Prepare sends only records whose embedded input changed,
updates the others' fields without inference, and the counts add up."""

from __future__ import annotations

import json
from typing import Any

import pytest
from opensearchpy.exceptions import TransportError

from osbatch.config import PipelineConfig, parse_pipeline
from osbatch.contracts import FINGERPRINT_FIELD, ID_FIELD, JOB_FIELD, SOURCE_FIELD, job_stale_ids_key
from osbatch.dal import JobTable
from osbatch.incremental.check import MGET_BATCH
from osbatch.incremental.fingerprint import config_fingerprint
from osbatch.incremental.sync import PAGE, read_stale, settle, stale_ids, write_stale
from tests.unit.fake_opensearch import FakeClient
from tests.unit.helpers import NESTED_MAPPING, chunking_pipeline_dict, pipeline_dict, run_prepare, stamped

URI = "s3://osb-in/input/msmarco/a.jsonl"


def upload(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


def indexed_before(
    config: PipelineConfig, records: list[dict[str, Any]], job_id: str = "msmarco-0"
) -> FakeClient:
    """A cluster holding the documents an earlier job of the same upload wrote, with their fingerprints."""
    client = FakeClient()
    for record in records:
        client.cluster.docs[record["_id"]] = {
            "chunk": record["text"],
            "chunk_embedding": [0.1, 0.2, 0.3],
            **stamped(config, record["text"], job_id=job_id, source=URI, doc_id=record["_id"]),
        }
    return client


def sent_ids(s3: Any) -> list[str]:
    listing = s3.list_objects_v2(Bucket="osb-out", Prefix="jobs/msmarco-1/input/").get("Contents", [])
    return [
        json.loads(line)["_id"]
        for item in sorted(listing, key=lambda item: item["Key"])
        for line in s3.get_object(Bucket="osb-out", Key=item["Key"])["Body"].read().splitlines()
    ]


def test_only_changed_and_new_records_reach_the_model(
    config: PipelineConfig, s3: Any, jobs: JobTable
) -> None:
    # Given 100 records indexed by an earlier job
    before = [{"_id": f"d{n}", "text": f"text {n}", "tag": "old"} for n in range(100)]
    client = indexed_before(config, before)
    # When the upload comes again with one text edited, one record added and every tag changed
    after = [{**record, "tag": "new"} for record in before]
    after[7] = {**after[7], "text": "edited"}
    after.append({"_id": "d100", "text": "brand new", "tag": "new"})
    state, dead = run_prepare(config, s3, jobs, upload(after), cluster=client)
    # Then only the edited and the new record are sent to the model
    assert sent_ids(s3) == ["d7", "d100"]
    prepared = state.prepared
    assert (prepared.records_in, prepared.valid, prepared.unchanged, prepared.dead_lettered) == (
        101,
        2,
        99,
        0,
    )
    assert prepared.incremental["inputs_saved"] == 99 and prepared.incremental["tokens_saved"] > 0
    # And the unchanged documents keep their vectors and fingerprint, with the job that last wrote them
    kept = client.cluster.docs["d3"]
    assert kept["chunk_embedding"] == [0.1, 0.2, 0.3]
    assert kept[FINGERPRINT_FIELD] == stamped(config, "text 3", job_id="x", source=URI)[FINGERPRINT_FIELD]
    assert kept[JOB_FIELD] == "msmarco-0" and kept[SOURCE_FIELD] == URI  # the job that embedded it
    # And the fingerprints were read in bulk, a batch of ids a request
    assert [len(ids) for ids in client.mgets] == [101]
    assert not dead.items


def test_the_check_reads_fingerprints_in_batches(config: PipelineConfig, s3: Any, jobs: JobTable) -> None:
    # Given more records than one _mget takes, none of them indexed yet
    records = [{"_id": f"d{n}", "text": f"t{n}"} for n in range(MGET_BATCH + 5)]
    client = FakeClient()
    # When they are prepared
    state, _ = run_prepare(config, s3, jobs, upload(records), cluster=client)
    # Then every record goes to the model, checked in two requests
    assert [len(ids) for ids in client.mgets] == [MGET_BATCH, 5]
    assert (state.prepared.valid, state.prepared.unchanged) == (MGET_BATCH + 5, 0)


def test_a_model_change_makes_every_record_changed(config: PipelineConfig, s3: Any, jobs: JobTable) -> None:
    # Given records indexed under one model
    records = [{"_id": f"d{n}", "text": f"t{n}"} for n in range(5)]
    client = indexed_before(config, records)
    # When the pipeline now names another model and the same upload comes again
    changed = pipeline_dict()
    changed["inference"]["sagemaker"]["ModelName"] = "another-embedder"
    state, _ = run_prepare(parse_pipeline(changed), s3, jobs, upload(records), cluster=client)
    # Then every record is sent again
    assert (state.prepared.valid, state.prepared.unchanged) == (5, 0)


def test_scaling_the_transform_job_changes_no_fingerprint() -> None:
    # Given a pipeline, and the same pipeline on larger instances / a chunked one
    base = pipeline_dict()
    scaled = pipeline_dict()
    scaled["inference"]["sagemaker"]["TransformResources"] = {
        "InstanceType": "ml.m5.4xlarge",
        "InstanceCount": 3,
    }
    chunked = chunking_pipeline_dict({"algorithms": [{"fixed_token_length": {"token_limit": 128}}]})
    prints = [config_fingerprint(parse_pipeline(config)) for config in (base, scaled, chunked)]
    # Then instances change nothing the model sees; chunking does
    assert prints[0] == prints[1]
    assert prints[0] != prints[2]


def test_documents_written_by_something_else_are_embedded_again_and_said_so(
    config: PipelineConfig, s3: Any, jobs: JobTable
) -> None:
    # Given an index whose documents carry no fingerprint
    client = FakeClient()
    client.cluster.docs.update({f"d{n}": {"chunk": f"t{n}"} for n in range(3)})
    # When the same records are uploaded
    state, _ = run_prepare(
        config, s3, jobs, upload([{"_id": f"d{n}", "text": f"t{n}"} for n in range(3)]), cluster=client
    )
    # Then all are sent, and the report's notes say why
    assert state.prepared.valid == 3
    assert state.prepared.incremental["without_fingerprint"] == 3
    assert "no osbatch fingerprint" in state.prepared.incremental["notes"][0]


def test_a_failed_lookup_sends_its_records_to_the_model(
    config: PipelineConfig, s3: Any, jobs: JobTable
) -> None:
    # Given an indexed record and a cluster that refuses _mget
    records = [{"_id": "d0", "text": "t0"}]
    client = indexed_before(config, records)

    def refuse(**_: Any) -> Any:
        raise TransportError(503, "unavailable", {})

    client.mget = refuse  # type: ignore[method-assign]
    # When it is uploaded again
    state, _ = run_prepare(config, s3, jobs, upload(records), cluster=client)
    # Then it is embedded again rather than lost, and the report says so
    assert (state.prepared.valid, state.prepared.unchanged) == (1, 0)
    assert state.prepared.incremental["check_failed"] == 1


def test_an_unchanged_document_that_vanished_is_dead_lettered_not_lost(
    config: PipelineConfig, s3: Any, jobs: JobTable
) -> None:
    # Given a record whose document the check finds, but which is deleted before its update lands
    records = [{"_id": "d0", "text": "t0"}, {"_id": "d1", "text": "t1"}]
    client = indexed_before(config, records)
    found = client.mget

    def then_gone(**kwargs: Any) -> Any:
        answer = found(**kwargs)
        del client.cluster.docs["d1"]
        return answer

    client.mget = then_gone  # type: ignore[method-assign]
    # When it is uploaded again
    state, dead = run_prepare(config, s3, jobs, upload(records), cluster=client)
    # Then the update's failure is a dead letter with the reason, and the counts still add up
    prepared = state.prepared
    assert (prepared.unchanged, prepared.dead_lettered, prepared.valid) == (1, 1, 0)
    assert prepared.records_in == prepared.valid + prepared.unchanged + prepared.dead_lettered
    assert dead.items[0]["line"] == 2 and "document_missing_exception" in dead.items[0]["reason"]
    assert prepared.incremental["inputs_saved"] == 1


def test_incremental_off_checks_nothing(s3: Any, jobs: JobTable) -> None:
    # Given a pipeline with source.incremental false and an index holding the same records
    off = pipeline_dict()
    off["source"] = {**off["source"], "incremental": False}
    config = parse_pipeline(off)
    records = [{"_id": "d0", "text": "t0"}]
    client = indexed_before(config, records)
    # When the records are uploaded
    state, _ = run_prepare(config, s3, jobs, upload(records), cluster=client)
    # Then nothing is looked up, every record is sent, and the report says why
    assert client.mgets == []
    assert state.prepared.valid == 1
    assert state.prepared.incremental["why_off"] == "source.incremental is false in the pipeline's config"


def test_records_gone_from_the_new_version_are_found_by_prepare(
    config: PipelineConfig, s3: Any, jobs: JobTable
) -> None:
    # Given 6 records indexed from this upload, and one from another file
    before = [{"_id": f"d{n}", "text": f"t{n}"} for n in range(6)]
    client = indexed_before(config, before)
    client.cluster.docs["other"] = {SOURCE_FIELD: "s3://osb-in/input/msmarco/b.jsonl", ID_FIELD: "other"}
    # When the upload comes again without d1 and d4
    state, _ = run_prepare(config, s3, jobs, upload([before[n] for n in (0, 2, 3, 5)]), cluster=client)
    # Then Prepare counts the two as stale and keeps their ids for Finalize, and nothing else
    assert state.prepared.incremental["stale"] == 2
    assert sorted(read_stale(s3, "osb-out", job_stale_ids_key("msmarco-1"))) == ["d1", "d4"]


@pytest.mark.parametrize(
    ("mirror", "completed", "left", "stale", "deleted"),
    [(False, True, 3, 1, 0), (True, True, 2, 0, 1), (True, False, 3, 1, 0)],
)
def test_documents_gone_from_the_new_version_are_counted_or_mirrored(
    s3: Any, mirror: bool, completed: bool, left: int, stale: int, deleted: int
) -> None:
    # Given the index after a re-upload: two documents of the new version, one only the earlier version had
    # (so Prepare found it stale), and one from another file
    client = FakeClient()
    for doc_id in ("a", "b", "gone"):
        client.cluster.docs[doc_id] = {SOURCE_FIELD: URI, ID_FIELD: doc_id}
    client.cluster.docs["other"] = {SOURCE_FIELD: "s3://osb-in/input/msmarco/b.jsonl", ID_FIELD: "other"}
    found = write_stale(
        client,
        "msmarco",
        source_uri=URI,
        current={"a", "b"}.__contains__,
        s3=s3,
        bucket="osb-out",
        key="stale",
    )
    # When the job ends
    result = settle(
        client,
        "msmarco",
        source_uri=URI,
        stale=found,
        ids=lambda: read_stale(s3, "osb-out", "stale"),
        mirror=mirror,
        completed=completed,
    )
    # Then mirror deletes the earlier version's leftover once the job completed; otherwise it is counted
    assert found == 1
    assert (result.stale, result.deleted) == (stale, deleted)
    assert len([doc for doc in client.cluster.docs if doc != "other"]) == left
    assert "other" in client.cluster.docs
    assert (result.note is not None) == (mirror and not completed)


def test_stale_ids_are_paged(s3: Any) -> None:
    # Given more documents of one source than a search page holds, every other one gone from the new version
    client = FakeClient()
    for number in range(PAGE + 10):
        client.cluster.docs[f"d{number:06d}"] = {SOURCE_FIELD: URI, ID_FIELD: f"d{number:06d}"}
    # When Prepare looks for the stale ones / Then it finds every one, across the pages
    gone = list(stale_ids(client, "msmarco", source_uri=URI, current=lambda doc_id: int(doc_id[1:]) % 2 == 0))
    assert len(gone) == (PAGE + 10) // 2


def test_a_chunked_record_unchanged_sends_none_of_its_passages(s3: Any, jobs: JobTable) -> None:
    # Given a chunking pipeline whose two long records an earlier job embedded as passages
    config = parse_pipeline(
        chunking_pipeline_dict(
            {
                "algorithms": [{"fixed_token_length": {"token_limit": 16, "overlap_rate": 0}}],
                "tokenizer": "utf8-bytes",
            },
            sink={**pipeline_dict()["sink"], "mapping": NESTED_MAPPING, "field_map": {"_id": "$._id"}},
        )
    )
    long_text = " ".join(f"word{n}" for n in range(60))
    records = [{"_id": "a", "text": long_text}, {"_id": "b", "text": long_text + " more"}]
    client = indexed_before(config, records)
    # When the upload comes again with b's text edited
    after = [records[0], {"_id": "b", "text": long_text + " edited"}]
    state, dead = run_prepare(config, s3, jobs, upload(after), cluster=client)
    # Then only b's passages reach the model, and a's passages are counted as model inputs saved
    assert {line["_osbatch"]["line"] for line in sent_lines(s3)} == {2}
    passages_of_a = state.prepared.incremental["inputs_saved"]
    assert passages_of_a > 1 and state.prepared.passages == len(sent_lines(s3))
    assert (state.prepared.valid, state.prepared.unchanged) == (1, 1)
    assert not dead.items


def sent_lines(s3: Any) -> list[dict[str, Any]]:
    listing = s3.list_objects_v2(Bucket="osb-out", Prefix="jobs/msmarco-1/input/").get("Contents", [])
    return [
        json.loads(line)
        for item in sorted(listing, key=lambda item: item["Key"])
        for line in s3.get_object(Bucket="osb-out", Key=item["Key"])["Body"].read().splitlines()
    ]
