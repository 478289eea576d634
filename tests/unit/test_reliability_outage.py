"""reliability/outage.py (scenario h): what it judges a failed job's report and the index's settings by."""

from __future__ import annotations

from reliability.outage import adds_up, relaxed


def test_a_report_adds_up_only_when_every_record_is_indexed_unchanged_or_dead_lettered() -> None:
    # Given a failed job's report whose counts settle every record, and one that leaves records out
    settled = {"records_in": 1000, "indexed": 600, "dead_lettered": 390, "unchanged": 10, "unaccounted": 0}
    short = {**settled, "dead_lettered": 389, "unaccounted": 1}
    # When they are judged, then only the first adds up
    assert adds_up(settled)
    assert not adds_up(short)
    # And a report that says nothing is unaccounted while its counts fall short does not add up either
    assert not adds_up({**short, "unaccounted": 0})


def test_an_index_is_relaxed_while_either_setting_is_as_the_load_set_it() -> None:
    # Given the settings OpenSearch returns (strings, None for a setting left at its default)
    # When they are judged, then the load's values are seen in either setting, and only there
    assert relaxed({"refresh_interval": "-1", "number_of_replicas": "1"})
    assert relaxed({"refresh_interval": None, "number_of_replicas": "0"})
    assert not relaxed({"refresh_interval": None, "number_of_replicas": "1"})
    assert not relaxed({"refresh_interval": "30s", "number_of_replicas": "2"})
