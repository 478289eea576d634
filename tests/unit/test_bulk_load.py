"""A bulk load into a new index runs without refresh and replicas; the loader leaving last restores them."""

from __future__ import annotations

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
