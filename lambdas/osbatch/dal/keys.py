"""The job table's key schema, defined once: every kind of item and the keys it is stored under.

The table's key is (`job_id`, `item`). A job's own items share its id: the job item (`item = "job"`) and one
item per ingest chunk (`item = "chunk#NNNNN"`). Items that belong to no one job have an id of their own:
a pipeline's job slots (`slots#<pipeline>`, `slots`), an index's bulk-load lease (`bulk-load#<index>`,
`lease`) and a domain's writer limit (`domain#<endpoint>`, `writers`).
"""

from __future__ import annotations

JOB_ITEM = "job"
CHUNK_PREFIX = "chunk#"
# One item per pipeline holds the ids of the jobs that have a remote-job slot (a string set).
SLOTS_KEY_PREFIX = "slots#"
SLOTS_ITEM = "slots"
WAITER_PREFIX = "w#"  # a waiting job's ticket on the slots item: w#<12-digit ticket number>
# One item per index being bulk-loaded (search/bulk_load.py): the jobs loading it and its saved settings.
BULK_LOAD_PREFIX = "bulk-load#"
LEASE_ITEM = "lease"
# One item per OpenSearch domain: its ingest writers' leases and their adaptive limit (dal/domain_writers.py).
DOMAIN_PREFIX = "domain#"
WRITERS_ITEM = "writers"

Key = dict[str, str]


def job_key(job_id: str) -> Key:
    return {"job_id": job_id, "item": JOB_ITEM}


def chunk_item(chunk: int) -> str:
    return f"{CHUNK_PREFIX}{chunk:05d}"


def chunk_number(item: str) -> int:
    return int(item.removeprefix(CHUNK_PREFIX))


def chunk_key(job_id: str, chunk: int) -> Key:
    return {"job_id": job_id, "item": chunk_item(chunk)}


def slots_key(pipeline: str) -> Key:
    return {"job_id": f"{SLOTS_KEY_PREFIX}{pipeline}", "item": SLOTS_ITEM}


def waiter_ticket(number: int) -> str:
    return f"{WAITER_PREFIX}{number:012d}"


def lease_key(index: str) -> Key:
    return {"job_id": f"{BULK_LOAD_PREFIX}{index}", "item": LEASE_ITEM}


def domain_writers_key(domain: str) -> Key:
    return {"job_id": f"{DOMAIN_PREFIX}{domain}", "item": WRITERS_ITEM}
