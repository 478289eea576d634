"""How many ingest-chunk functions may run at once: sized from the pipelines at synth, and refused when
no account with Lambda's default quota could reserve it.

Every upload ingests through its own Distributed Map of MAP_MAX_CONCURRENCY children. Children beyond
ingest-chunk's reserved concurrency are throttled by Lambda, and one throttled past its retries
(infra/workflow.py, LAMBDA_THROTTLED) fails the Map and the upload; so the reservation must hold the
Maps of every upload that holds a job slot, over all pipelines. More than a domain's writer ceiling
(`sink.bulk.domain_writers_max`) would not write any faster: those chunks would wait, billed, for a writer
slot (dal/domain_writers.py). Per domain, then, the smaller of the two; at least the spec's 40.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from infra.functions import FUNCTIONS
from infra.workflow import MAP_MAX_CONCURRENCY
from osbatch.infra_facts import ConfigError, PipelineConfig

INGEST_CHUNK = "ingest-chunk"
# "Lambda reserves 100 units of concurrency for functions that don't have reserved concurrency", out of a
# default account quota of 1,000: "Configuring reserved concurrency for a function", AWS Lambda Developer
# Guide, docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
DEFAULT_ACCOUNT_CONCURRENCY = 1000
UNRESERVED_MINIMUM = 100
CREATED_DOMAIN = "(the stack's created domain)"


def ingest_chunk_reservation(pipelines: Sequence[PipelineConfig]) -> int:
    """Per domain, the fewer of its pipelines' slot-holding Maps' children and its writer ceiling; summed."""
    maps: dict[str, int] = defaultdict(int)
    ceiling: dict[str, int] = defaultdict(int)
    for pipeline in pipelines:
        domain = pipeline.sink.opensearch.endpoint or CREATED_DOMAIN
        maps[domain] += pipeline.inference.max_jobs_in_flight * MAP_MAX_CONCURRENCY
        ceiling[domain] = max(ceiling[domain], pipeline.sink.bulk.domain_writers_max)
    wanted = sum(min(maps[domain], ceiling[domain]) for domain in maps)
    floor = FUNCTIONS[INGEST_CHUNK].reserved_concurrency or 0
    return max(floor, wanted)


def reservations(pipelines: Sequence[PipelineConfig]) -> dict[str, int]:
    """Every function's reserved concurrency; refuses a total Lambda's default account quota cannot give."""
    reserved = {name: spec.reserved_concurrency or 0 for name, spec in FUNCTIONS.items()}
    reserved[INGEST_CHUNK] = ingest_chunk_reservation(pipelines)
    room = DEFAULT_ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM
    total = sum(reserved.values())
    if total > room:
        slots = ", ".join(f"'{p.name}': {p.inference.max_jobs_in_flight}" for p in pipelines)
        raise ConfigError(
            f"ingest-chunk would reserve {reserved[INGEST_CHUNK]} concurrent executions (max_jobs_in_flight "
            f"{slots}, x {MAP_MAX_CONCURRENCY} Map children each, at most sink.bulk.domain_writers_max per "
            f"domain), {total} for all functions: more than the {room} an account with Lambda's default "
            f"quota of {DEFAULT_ACCOUNT_CONCURRENCY} can reserve (it keeps {UNRESERVED_MINIMUM} unreserved). "
            "Lower max_jobs_in_flight or domain_writers_max, or deploy with -c reserved_concurrency=false "
            "into an account whose quota is raised"
        )
    return reserved
