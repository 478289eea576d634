"""A bulk load into a new index runs without refresh and replicas; the loader leaving last restores them."""

from __future__ import annotations

import pytest
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError

from osbatch.dal import JobTable
from osbatch.search.bulk_load import IndexLoad
from tests.unit.fake_opensearch import FakeClient, FakeIndices

INDEX = "msmarco"


def new_index(**settings: str) -> FakeClient:
    indices = FakeIndices(existing={INDEX: {}})
    indices.settings[INDEX] = dict(settings)
    return FakeClient(indices)


def test_a_load_into_a_new_index_relaxes_it_and_the_end_restores_it(jobs: JobTable) -> None:
    # Given an empty index with a 5s refresh and 2 replicas
    cluster = new_index(refresh_interval="5s", number_of_replicas="2")
    load = IndexLoad(cluster, INDEX)

    # When a job begins its load
    assert load.begin(jobs, "job-1")
    # Then the index loads without refresh and replicas
    assert cluster.indices.settings[INDEX] == {"refresh_interval": "-1", "number_of_replicas": "0"}

    # When the job ends
    assert load.end(jobs, "job-1")
    # Then both settings are back, the documents were refreshed, and the lease is gone
    assert cluster.indices.settings[INDEX] == {"refresh_interval": "5s", "number_of_replicas": "2"}
    assert cluster.indices.refreshed == [INDEX]
    assert not jobs.bulk_load_active(INDEX)


def test_a_setting_left_at_its_default_goes_back_to_the_default(jobs: JobTable) -> None:
    # Given an empty index whose refresh_interval was never set
    cluster = new_index()
    load = IndexLoad(cluster, INDEX)
    # When a load begins and ends
    load.begin(jobs, "job-1")
    load.end(jobs, "job-1")
    # Then refresh_interval is unset again (null resets it), replicas as they were
    assert cluster.indices.settings[INDEX] == {"number_of_replicas": "1"}


def test_an_index_with_documents_keeps_its_settings(jobs: JobTable) -> None:
    # Given an index people already search
    cluster = new_index(refresh_interval="1s")
    cluster.docs = 1000
    load = IndexLoad(cluster, INDEX)
    # When a job loads into it
    joined = load.begin(jobs, "job-1")
    # Then nothing changes, and the end does nothing either
    assert not joined
    assert cluster.indices.settings[INDEX] == {"refresh_interval": "1s"}
    assert not load.end(jobs, "job-1")
    assert cluster.indices.refreshed == []


def test_concurrent_loads_restore_only_when_the_last_one_ends(jobs: JobTable) -> None:
    # Given two jobs that begin loading the same new index
    cluster = new_index(refresh_interval="2s")
    load = IndexLoad(cluster, INDEX)
    load.begin(jobs, "job-1")
    cluster.docs = 500  # job 1's chunks ran; the second job still joins the load under way
    assert load.begin(jobs, "job-2")

    # When the first one ends, the index stays relaxed for the second
    assert not load.end(jobs, "job-1")
    assert cluster.indices.settings[INDEX]["refresh_interval"] == "-1"

    # Then the second one's end restores the settings the first one saved, not the relaxed ones
    assert load.end(jobs, "job-2")
    assert cluster.indices.settings[INDEX] == {"refresh_interval": "2s", "number_of_replicas": "1"}


def test_ending_twice_or_without_beginning_is_harmless(jobs: JobTable) -> None:
    # Given a load that began and ended (a retried Finalize calls end again)
    cluster = new_index(refresh_interval="3s")
    load = IndexLoad(cluster, INDEX)
    load.begin(jobs, "job-1")
    load.end(jobs, "job-1")
    cluster.indices.settings[INDEX]["refresh_interval"] = "7s"  # someone changed it since

    # When end runs again, and for a job that never began
    # Then neither touches the index
    assert not load.end(jobs, "job-1")
    assert not load.end(jobs, "job-2")
    assert cluster.indices.settings[INDEX]["refresh_interval"] == "7s"


def test_a_restore_the_node_refused_is_owed_and_a_retried_end_makes_it(jobs: JobTable) -> None:
    # Given a load whose end found the node down (Finalize during an outage): the end fails
    cluster = new_index(refresh_interval="5s")
    load = IndexLoad(cluster, INDEX)
    load.begin(jobs, "job-1")
    cluster.indices.down = True
    with pytest.raises(OpenSearchConnectionError):
        load.end(jobs, "job-1")
    assert cluster.indices.settings[INDEX]["refresh_interval"] == "-1"

    # When the step is retried with the node back (FailJob after the failed Finalize)
    cluster.indices.down = False
    restored = load.end(jobs, "job-1")

    # Then the settings the load saved are restored, although the job had already left the lease
    assert restored
    assert cluster.indices.settings[INDEX] == {"refresh_interval": "5s", "number_of_replicas": "1"}
    assert cluster.indices.refreshed == [INDEX]
    assert not load.end(jobs, "job-1")  # and only once


def test_end_or_owe_reports_the_unanswered_restore_instead_of_raising(jobs: JobTable) -> None:
    # Given a load under way and the node down
    cluster = new_index(refresh_interval="5s")
    load = IndexLoad(cluster, INDEX)
    load.begin(jobs, "job-1")
    cluster.indices.down = True
    # When FailJob ends it
    unanswered = load.end_or_owe(jobs, "job-1")
    # Then the connection error is returned, the job has left the lease, and the restore is owed
    assert unanswered is not None and unanswered.startswith("ConnectionError")
    assert not jobs.bulk_load_active(INDEX)
    assert jobs.owed_bulk_load_settings(INDEX) == {"refresh_interval": "5s", "number_of_replicas": "1"}
    # And with the node up, an end that restores returns None
    cluster.indices.down = False
    assert load.end_or_owe(jobs, "job-2") is None
    assert jobs.owed_bulk_load_settings(INDEX) is None


def test_the_next_load_into_a_populated_index_restores_what_a_failed_end_left_relaxed(jobs: JobTable) -> None:
    # Given a load whose end found the node down, into an index that now holds documents
    cluster = new_index(refresh_interval="5s", number_of_replicas="2")
    load = IndexLoad(cluster, INDEX)
    load.begin(jobs, "job-1")
    cluster.indices.down = True
    load.end_or_owe(jobs, "job-1")
    cluster.indices.down = False
    cluster.docs = 967

    # When the next job begins its load into it
    joined = load.begin(jobs, "job-2")

    # Then the index gets its own settings back and keeps them: people search it now
    assert not joined
    assert cluster.indices.settings[INDEX] == {"refresh_interval": "5s", "number_of_replicas": "2"}
    assert cluster.indices.refreshed == [INDEX]
    assert jobs.owed_bulk_load_settings(INDEX) is None


def test_the_next_load_into_an_empty_index_relaxes_it_from_its_own_settings(jobs: JobTable) -> None:
    # Given a restore owed on an index that is still empty
    cluster = new_index(refresh_interval="5s")
    load = IndexLoad(cluster, INDEX)
    load.begin(jobs, "job-1")
    cluster.indices.down = True
    load.end_or_owe(jobs, "job-1")
    cluster.indices.down = False

    # When the next job loads it and ends
    assert load.begin(jobs, "job-2")
    assert cluster.indices.settings[INDEX]["refresh_interval"] == "-1"
    assert load.end(jobs, "job-2")

    # Then the index has its own settings, not the relaxed ones
    assert cluster.indices.settings[INDEX] == {"refresh_interval": "5s", "number_of_replicas": "1"}
