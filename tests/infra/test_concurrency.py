"""ingest-chunk's reserved concurrency holds every slot-holding upload's Map, and synth refuses what no
account with Lambda's default quota could reserve."""

from __future__ import annotations

import pytest

from infra.concurrency import ingest_chunk_reservation, reservations
from infra.stack import OsbatchStack
from osbatch.config import ConfigError
from tests.infra.helpers import new_app, pipeline

OTHER_DOMAIN = {"sink": {"opensearch": {"endpoint": "https://search-other-abc.us-east-1.es.amazonaws.com"}}}


def _slots(name: str, jobs: int, **sections: object) -> object:
    return pipeline(
        name=name, source={"prefix": f"input/{name}/"}, inference={"max_jobs_in_flight": jobs}, **sections
    )


def test_the_reservation_holds_every_slot_holding_uploads_map() -> None:
    # Given 10 uploads in flight at once on one pipeline (the simulation's deployed shape)
    ten = [_slots("a", 10)]
    # Then ingest-chunk reserves 80 Map children... capped at the domain's writer ceiling of 64, since more
    # would only wait, billed, for a writer slot
    assert ingest_chunk_reservation(ten) == 64
    # And two pipelines of 4 slots on different domains reserve 32 each; on one domain their sum
    assert ingest_chunk_reservation([_slots("a", 4), _slots("b", 4, **OTHER_DOMAIN)]) == 64
    assert ingest_chunk_reservation([_slots("a", 6), _slots("b", 6)]) == 64
    # And a small pipeline keeps the least reservation, five Maps
    assert ingest_chunk_reservation([_slots("a", 1)]) == 40


def test_the_writer_ceiling_raised_raises_the_reservation() -> None:
    # Given 10 slots and a domain whose writers may grow to 200
    wide = _slots("a", 10, sink={"bulk": {"domain_writers_max": 200}})
    # Then every slot's Map gets its 8 children
    assert ingest_chunk_reservation([wide]) == 80


def test_synth_refuses_a_reservation_no_default_account_can_give() -> None:
    # Given 120 slots with a writer ceiling of 1,000: 960 ingest-chunk executions
    greedy = _slots("a", 120, sink={"bulk": {"domain_writers_max": 1000}})
    # Then the check says why and what to change, with the numbers
    with pytest.raises(ConfigError, match=r"ingest-chunk would reserve 960 .*'a': 120.* more than the 900"):
        reservations([greedy])
    # And synth refuses it the same way
    with pytest.raises(ConfigError, match="Lower max_jobs_in_flight or domain_writers_max"):
        OsbatchStack(new_app(), "greedy", pipelines=[greedy])
    # But without reservations (context reserved_concurrency=false) there is nothing to refuse
    OsbatchStack(new_app(), "unreserved", pipelines=[greedy], reserve_concurrency=False)
