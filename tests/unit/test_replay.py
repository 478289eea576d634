"""Replaying dead letters once the cause is fixed: by _id, idempotent, failures kept with new reasons."""

from __future__ import annotations

import json
from typing import Any

from osbatch.config import parse_pipeline
from osbatch.contracts import (
    INGEST_DEAD_LETTERS,
    PREPARE_DEAD_LETTERS,
    dead_letter_key,
    dropped_records_dead_letter_key,
    remote_job_dead_letter_key,
)
from osbatch.dal import JobTable
from osbatch.ingest.chunk import IngestTarget
from osbatch.ingest.dead_letter import DeadLetterWriter
from osbatch.ingest.replay import input_records, replay
from tests.unit.fake_opensearch import KnnCluster
from tests.unit.helpers import pipeline_dict

DLQ = "osb-dlq"


def dead_letter(stage: str, record: Any, line: int | None = None) -> bytes:
    entry = {"job_id": "j", "source": "s3://in/a.jsonl", "line": line, "offset": 0, "stage": stage,
             "reason": "old reason", "record": record}  # fmt: skip
    return json.dumps(entry).encode()


def fixed_sink() -> dict[str, Any]:
    # The fix: the model writes its vector under `embedding`, which the field_map now reads.
    field_map = {"_id": "$._id", "chunk": "$.text", "chunk_embedding": "$.embedding"}
    return {**pipeline_dict()["sink"], "field_map": field_map}


def fixed_target() -> IngestTarget:
    return IngestTarget.of_pipeline(parse_pipeline(pipeline_dict(sink=fixed_sink())))


def run(s3: Any, cluster: KnnCluster, entries: list[bytes], key: str) -> Any:
    dead = DeadLetterWriter(s3, DLQ, key, job_id="j", source="replay")
    return replay(entries, target=fixed_target(), opensearch=cluster, dead_letters=dead)


def test_a_replay_after_the_fix_indexes_what_now_maps_and_keeps_the_rest_with_new_reasons(s3: Any) -> None:
    # Given dead letters of a job whose field_map read the wrong key, one record also having a short vector,
    # and one line that was not JSON
    entries = [
        dead_letter("map", {"_id": "1", "text": "a", "embedding": [1, 2, 3]}, line=1),
        dead_letter("map", {"_id": "2", "text": "b", "embedding": [1, 2]}, line=2),
        dead_letter(
            "parse", '{"_id": "3", "text": "c", "embedding": [1, 2, 3]}'
        ),  # fixed in place by the user
        dead_letter("parse", '{"_id": "4", "te'),
    ]
    cluster = KnnCluster()

    # When they are replayed with the fixed config
    report = run(s3, cluster, entries, "dead-letter/j/replay/00000.jsonl")

    # Then the fixable ones are indexed, the others are dead letters again with today's reasons
    assert (report.read, report.indexed, report.dead_lettered) == (4, 2, 2)
    assert sorted(cluster.docs) == ["1", "3"]
    body = s3.get_object(Bucket=DLQ, Key="dead-letter/j/replay/00000.jsonl")["Body"].read().decode()
    again = [json.loads(line) for line in body.splitlines()]
    assert [(d["stage"], d["line"]) for d in again] == [("parse", None), ("index", 2)]
    assert again[1]["reason"].endswith("Vector dimension mismatch. Expected: 3, Actual: 2)")

    # And replaying again changes nothing: same documents, same outcome
    before = json.dumps(cluster.docs, sort_keys=True)
    second = run(s3, cluster, entries, "dead-letter/j/replay/00000.jsonl")
    assert (second.indexed, second.dead_lettered) == (2, 2)
    assert json.dumps(cluster.docs, sort_keys=True) == before


def test_prepare_dead_letters_become_input_lines_to_upload_again() -> None:
    entries = [
        dead_letter("parse", {"_id": "9", "text": "x"}, line=3),
        dead_letter("parse", '{"_id": "8", "te'),
    ]
    assert list(input_records(entries)) == [b'{"_id":"9","text":"x"}\n', b'{"_id": "8", "te\n']


def test_replaying_a_job_reads_its_ingest_dead_letters_and_hands_back_its_input_ones(
    s3: Any, tmp_path: Any
) -> None:
    # Given a job with an ingest dead-letter object and a Prepare one
    from cli.replay import replay_job

    ingest = [dead_letter("map", {"_id": "1", "text": "a", "embedding": [1, 2, 3]}, line=1)]
    prepare = [dead_letter("parse", {"_id": "7", "text": "no newline fix"}, line=5)]
    s3.put_object(
        Bucket=DLQ, Key=dead_letter_key("j", INGEST_DEAD_LETTERS, 0), Body=b"\n".join(ingest) + b"\n"
    )
    # (the keys Prepare and the chunks write)
    s3.put_object(
        Bucket=DLQ, Key=dead_letter_key("j", PREPARE_DEAD_LETTERS, 0), Body=b"\n".join(prepare) + b"\n"
    )
    cluster = KnnCluster()
    said: list[str] = []

    # When the job is replayed
    report = replay_job(
        "j", job_id="j", config=parse_pipeline(pipeline_dict(sink=fixed_sink())), s3=s3, bucket=DLQ,
        opensearch=cluster, resubmit_dir=tmp_path, say=said.append,
    )  # fmt: skip

    # Then the ingest record is indexed, and the input record is in a file to upload again
    assert (report.read, report.indexed, report.dead_lettered) == (1, 1, 0)
    assert sorted(cluster.docs) == ["1"]
    assert (tmp_path / "j-resubmit.jsonl").read_bytes() == b'{"_id":"7","text":"no newline fix"}\n'
    assert said[-1] == "replayed 1: 1 indexed, 0 failed again"


def test_records_without_a_model_output_are_handed_back_and_failed_jobs_name_the_file_to_upload(
    s3: Any, tmp_path: Any
) -> None:
    # Given a job whose service failed one record (in a chunk's letters), whose output lacked another, and
    # one of whose remote jobs failed as a whole
    from cli.replay import replay_job

    failed = dead_letter("inference", {"_id": "5", "text": "e", "_osbatch": {"line": 5, "error": {}}}, line=5)
    lacked = dead_letter("inference", {"_id": "6", "text": "f"}, line=6)
    whole = dead_letter(
        "inference", {"file": "s3://in/a.jsonl", "records": 40, "prepared_input": "s3://o/p/"}
    )
    letters = {
        dead_letter_key("j", INGEST_DEAD_LETTERS, 0): [failed],
        dropped_records_dead_letter_key("j", "part-00000.jsonl"): [lacked],
        remote_job_dead_letter_key("j", 1): [whole],
    }
    for key, entries in letters.items():
        s3.put_object(Bucket=DLQ, Key=key, Body=b"\n".join(entries) + b"\n")
    cluster = KnnCluster()
    said: list[str] = []

    # When the job is replayed
    report = replay_job(
        "j", job_id="j", config=parse_pipeline(pipeline_dict(sink=fixed_sink())), s3=s3, bucket=DLQ,
        opensearch=cluster, resubmit_dir=tmp_path, say=said.append,
    )  # fmt: skip

    # Then nothing is indexed without a model output: both records are in the file to upload again, as
    # the user wrote them
    assert (report.read, report.indexed, cluster.docs) == (0, 0, {})
    resubmit = (tmp_path / "j-resubmit.jsonl").read_bytes()
    assert resubmit == b'{"_id":"5","text":"e"}\n{"_id":"6","text":"f"}\n'
    # And the failed remote job's 40 records are named by the file that holds them
    assert "40 records of s3://in/a.jsonl were not indexed because their job failed" in said[-2]


def failed_load_with_a_dead_letter(s3: Any, jobs: JobTable, index: str, saved: dict[str, str]) -> None:
    """Job "j"'s load left its restore owed (`saved` kept, no job loading) and one record dead-lettered."""
    jobs.join_bulk_load(index, "j")
    jobs.save_bulk_load_settings(index, saved)
    jobs.leave_bulk_load(index, "j")
    ingest = [dead_letter("index", {"_id": "1", "text": "a", "embedding": [1, 2, 3]}, line=1)]
    s3.put_object(Bucket=DLQ, Key=dead_letter_key("j", INGEST_DEAD_LETTERS, 0), Body=b"\n".join(ingest))


def test_a_replay_first_restores_the_index_settings_a_failed_load_left(
    s3: Any, tmp_path: Any, jobs: JobTable
) -> None:
    # Given a job that failed with its node down: its load left the index without refresh and replicas,
    # the settings to restore saved in the job table and no job loading any more
    from cli.replay import replay_job

    config = parse_pipeline(pipeline_dict(sink=fixed_sink()))
    cluster = KnnCluster()
    cluster.indices.settings[config.sink.index] = {"refresh_interval": "-1", "number_of_replicas": "0"}
    failed_load_with_a_dead_letter(
        s3, jobs, config.sink.index, {"refresh_interval": "5s", "number_of_replicas": "1"}
    )
    said: list[str] = []

    # When the job is replayed with the node back
    report = replay_job(
        "j", job_id="j", config=config, s3=s3, bucket=DLQ, opensearch=cluster, resubmit_dir=tmp_path,
        say=said.append, jobs=jobs,
    )  # fmt: skip

    # Then the index has its settings back and is refreshed, the replay says so, and the record is indexed
    index = config.sink.index
    assert cluster.indices.settings[index] == {"refresh_interval": "5s", "number_of_replicas": "1"}
    assert cluster.indices.refreshed == [index]
    assert "refresh_interval and number_of_replicas restored" in said[0]
    assert report.indexed == 1
    assert jobs.owed_bulk_load_settings(index) is None


def test_a_replay_that_cannot_restore_the_settings_still_replays(
    s3: Any, tmp_path: Any, jobs: JobTable
) -> None:
    # Given a restore owed on the index, and a node that refuses settings changes (no right to, or down)
    from cli.replay import replay_job

    config = parse_pipeline(pipeline_dict(sink=fixed_sink()))
    cluster = KnnCluster()
    cluster.indices.down = True
    failed_load_with_a_dead_letter(s3, jobs, config.sink.index, {"refresh_interval": "5s"})
    said: list[str] = []

    # When the job is replayed
    report = replay_job(
        "j", job_id="j", config=config, s3=s3, bucket=DLQ, opensearch=cluster, resubmit_dir=tmp_path,
        say=said.append, jobs=jobs,
    )  # fmt: skip

    # Then the record is indexed, the replay says the settings are not restored, and the restore stays owed
    assert report.indexed == 1
    assert "could not restore the settings" in said[0]
    assert jobs.owed_bulk_load_settings(config.sink.index) == {"refresh_interval": "5s"}
