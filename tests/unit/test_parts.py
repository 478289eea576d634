"""Parts grouped into remote jobs within the per-job limits, the last one rebalanced to the minimum."""

from __future__ import annotations

import json
from typing import Any

import pytest

from osbatch.backends.base import InputLimits, JobLimits
from osbatch.steps.support.parts import PartWriter, TooManyRemoteJobs, read_parts_list, write_parts_list

PREFIX = "jobs/j/input/"
SOURCES = "jobs/j/source/"


def write(
    s3: Any, records: int, files: InputLimits, jobs: JobLimits, max_jobs: int | None = None
) -> PartWriter:
    writer = PartWriter(s3, "osb-out", PREFIX, files, jobs, SOURCES, max_jobs=max_jobs)
    for n in range(records):
        writer.write({"recordId": n}, {"_id": f"d{n}", "_osbatch": {"line": n + 1}})
    writer.close()
    return writer


def listing(s3: Any, prefix: str) -> dict[str, list[Any]]:
    """key below prefix -> the lines of that object."""
    contents = s3.list_objects_v2(Bucket="osb-out", Prefix=prefix).get("Contents", [])
    return {
        item["Key"].removeprefix(prefix): [
            json.loads(line)
            for line in s3.get_object(Bucket="osb-out", Key=item["Key"])["Body"].read().splitlines()
        ]
        for item in contents
    }


def group_sizes(writer: PartWriter) -> list[list[int]]:
    return [[part.records for part in group.parts] for group in writer.groups]


def test_parts_fill_remote_jobs_in_order_and_never_straddle_two(s3: Any) -> None:
    # Given 4 records per file, 10 per remote job, and 25 records
    writer = write(s3, 25, InputLimits(4, 10**6), JobLimits(10, 10**9))
    # Then the jobs hold 10, 10 and 5 records, a part being cut early where its job is full
    assert group_sizes(writer) == [[4, 4, 2], [4, 4, 2], [4, 1]]
    # And each job's parts are in its own folder, numbered over the whole upload, the records in order
    inputs = listing(s3, PREFIX)
    assert sorted(inputs) == [
        "job-00000/part-00000.jsonl",
        "job-00000/part-00001.jsonl",
        "job-00000/part-00002.jsonl",
        "job-00001/part-00003.jsonl",
        "job-00001/part-00004.jsonl",
        "job-00001/part-00005.jsonl",
        "job-00002/part-00006.jsonl",
        "job-00002/part-00007.jsonl",
    ]
    assert [line["recordId"] for key in sorted(inputs) for line in inputs[key]] == list(range(25))


def test_bytes_per_job_close_a_job_too(s3: Any) -> None:
    # Given remote jobs of at most 40 bytes and input lines of 15 or 16 bytes
    writer = write(s3, 6, InputLimits(100, 10**6), JobLimits(100, 40))
    # Then no job holds more than 40 bytes of input
    assert group_sizes(writer) == [[2], [2], [2]]
    assert all(group.bytes <= 40 for group in writer.groups)


def test_the_last_job_under_the_minimum_takes_records_from_the_one_before(s3: Any) -> None:
    # Given 10 records per file and per job, at least 4 per job, and 23 records: jobs of 10, 10 and 3
    writer = write(s3, 23, InputLimits(10, 10**6), JobLimits(10, 10**9, min_records_per_job=4))
    # Then the second job's last record moved into the last job, as a part of its own
    assert group_sizes(writer) == [[10], [9], [1, 3]]
    inputs, sources = listing(s3, PREFIX), listing(s3, SOURCES)
    assert [line["recordId"] for line in inputs["job-00001/part-00001.jsonl"]] == list(range(10, 19))
    assert [line["recordId"] for line in inputs["job-00002/part-00003.jsonl"]] == [19]
    # And every record is in exactly one job, its source record cut the same way
    assert sorted(line["recordId"] for lines in inputs.values() for line in lines) == list(range(23))
    for key, lines in inputs.items():
        source = sources[key.split("/", 1)[1]]
        assert [record["_osbatch"]["line"] - 1 for record in source] == [line["recordId"] for line in lines]


def test_the_parts_list_names_every_part_as_closed_after_rebalancing(s3: Any) -> None:
    # Given jobs of 10, 10 and 3 records, rebalanced so the last takes a split part of the second
    writer = write(s3, 23, InputLimits(10, 10**6), JobLimits(10, 10**9, min_records_per_job=4))
    # When the parts list is written and read back
    write_parts_list(s3, "osb-out", "jobs/j/parts.json", writer.parts_list())
    parts = read_parts_list(s3, "osb-out", "jobs/j/parts.json")
    # Then each entry names a part where it is, in its remote job, with the records it holds
    inputs = listing(s3, PREFIX)
    assert [(part.job, part.key.removeprefix(PREFIX), part.records) for part in parts] == [
        (0, "job-00000/part-00000.jsonl", 10),
        (1, "job-00001/part-00001.jsonl", 9),
        (2, "job-00002/part-00003.jsonl", 1),
        (2, "job-00002/part-00002.jsonl", 3),
    ]
    assert all(len(inputs[part.key.removeprefix(PREFIX)]) == part.records for part in parts)
    assert [part.name for part in parts] == [part.key.rsplit("/", 1)[1] for part in parts]


def test_whole_parts_move_when_they_fit_the_shortfall(s3: Any) -> None:
    # Given 2 records per file, 10 per job, at least 5 per job, and 11 records: jobs of 10 and 1
    writer = write(s3, 11, InputLimits(2, 10**6), JobLimits(10, 10**9, min_records_per_job=5))
    # Then the first job's last two parts moved, whole, into the last: 6 and 5 records
    assert group_sizes(writer) == [[2, 2, 2], [2, 2, 1]]
    inputs = listing(s3, PREFIX)
    assert sorted(inputs) == [
        "job-00000/part-00000.jsonl",
        "job-00000/part-00001.jsonl",
        "job-00000/part-00002.jsonl",
        "job-00001/part-00003.jsonl",
        "job-00001/part-00004.jsonl",
        "job-00001/part-00005.jsonl",
    ]
    assert sorted(line["recordId"] for lines in inputs.values() for line in lines) == list(range(11))


def test_a_single_small_job_is_left_as_it_is(s3: Any) -> None:
    # Given 3 records, below a minimum of 100, in one job: there is nothing to take from
    writer = write(s3, 3, InputLimits(10, 10**6), JobLimits(50, 10**9, min_records_per_job=100))
    # Then it stays one job of 3 (the service says why it refuses it)
    assert group_sizes(writer) == [[3]]


def test_one_part_per_job_makes_a_job_of_every_file(s3: Any) -> None:
    # Given a service whose jobs take one file (OpenAI's batches)
    writer = write(s3, 7, InputLimits(3, 10**6), JobLimits(3, 10**9, max_parts_per_job=1))
    # Then every part is a job
    assert group_sizes(writer) == [[3], [3], [1]]


def test_more_jobs_than_allowed_fail_with_the_setting_named(s3: Any) -> None:
    # Given at most 2 remote jobs of 5 records
    # When 11 records are written / Then the writer refuses, naming the setting
    with pytest.raises(TooManyRemoteJobs, match=r"inference\.max_remote_jobs"):
        write(s3, 11, InputLimits(5, 10**6), JobLimits(5, 10**9), max_jobs=2)


def test_the_same_input_gives_the_same_jobs(s3: Any) -> None:
    # Given the same records written twice (a re-run of Prepare)
    limits = InputLimits(10, 10**6), JobLimits(10, 10**9, min_records_per_job=4)
    first = group_sizes(write(s3, 23, *limits))
    inputs = listing(s3, PREFIX)
    s3.delete_objects(Bucket="osb-out", Delete={"Objects": [{"Key": PREFIX + key} for key in inputs]})
    # Then the groups and every object are the same, so StartJob's names find the same jobs
    assert group_sizes(write(s3, 23, *limits)) == first
    assert listing(s3, PREFIX) == inputs


def write_chunked(s3: Any, passages: list[int], files: InputLimits, jobs: JobLimits) -> PartWriter:
    """Records of the given passage counts, one input line per passage (Bedrock's shape)."""
    writer = PartWriter(s3, "osb-out", PREFIX, files, jobs, SOURCES)
    for line, count in enumerate(passages, start=1):
        lines = [({"recordId": f"{line}-{n}"}, 1) for n in range(count)]
        writer.write_record(lines, {"_id": f"d{line}", "_osbatch": {"line": line, "passages": count}})
    writer.close()
    return writer


def records_in(lines: list[dict[str, Any]]) -> list[str]:
    return sorted({line["recordId"].split("-")[0] for line in lines})


def test_a_records_passages_count_against_the_quotas_and_never_straddle_two_parts(s3: Any) -> None:
    # Given 5 inputs per file and records of 3, 2, 3 and 1 passages
    writer = write_chunked(s3, [3, 2, 3, 1], InputLimits(5, 10**6), JobLimits(100, 10**9))
    # Then the parts hold 5 and 4 passages, each record whole in one of them
    assert group_sizes(writer) == [[5, 4]]
    inputs = listing(s3, PREFIX)
    assert [records_in(inputs[key]) for key in sorted(inputs)] == [["1", "2"], ["3", "4"]]
    # And the parts list and the remote job count the user's records, not passages
    assert [part.records for part in writer.parts_list()] == [2, 2]
    assert [group.sources for group in writer.groups] == [4]


def test_a_rebalancing_split_cuts_at_a_records_end(s3: Any) -> None:
    # Given jobs of 5 to 10 inputs and seven records of 2 passages: jobs of 10 and 4 inputs as written
    writer = write_chunked(s3, [2] * 7, InputLimits(10, 10**6), JobLimits(10, 10**9, min_records_per_job=5))
    # Then the last job takes one whole record (2 passages) to reach the minimum, not one passage of it
    assert group_sizes(writer) == [[8], [2, 4]]
    inputs, sources = listing(s3, PREFIX), listing(s3, SOURCES)
    assert [records_in(inputs[key]) for key in sorted(inputs)] == [["1", "2", "3", "4"], ["6", "7"], ["5"]]
    # And each part's source records are exactly the records of its passages
    for key, lines in inputs.items():
        assert [str(record["_osbatch"]["line"]) for record in sources[key.split("/", 1)[1]]] == records_in(
            lines
        )
    assert [part.records for part in writer.parts_list()] == [4, 1, 2]
