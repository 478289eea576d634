"""Data access for the job table: one module per kind of item, the key schema in keys.py.

| module            | items                                   | key (`job_id`, `item`)              |
|-------------------|-----------------------------------------|-------------------------------------|
| jobs.py           | a job's state and what each step recorded | (`<job id>`, `job`)               |
| chunks.py         | an ingest chunk's counts and checkpoint | (`<job id>`, `chunk#NNNNN`)         |
| slots.py          | a pipeline's job slots and waiting queue | (`slots#<pipeline>`, `slots`)      |
| bulk_load.py      | an index's bulk-load lease              | (`bulk-load#<index>`, `lease`)      |
| wakeups.py        | a parked WaitForJob's or WaitForSlot's token, on the job item | (`<job id>`, `job`) |
| domain_writers.py | a domain's ingest writer leases and limit | (`domain#<endpoint>`, `writers`)  |

job_table.JobTable is every kind at once; store.JobStore pairs it with the job's buckets.
"""

from osbatch.dal.bulk_load import LeaseLeft
from osbatch.dal.chunks import ChunkCounts, ChunkTally, TableProgress
from osbatch.dal.domain_writers import DomainWriters, LimitSettings, NoWriterSlot
from osbatch.dal.items import utc_now
from osbatch.dal.job_table import JobTable
from osbatch.dal.slots import WAITER_GONE_SECONDS
from osbatch.dal.store import JobStore
from osbatch.dal.wakeups import Claim, SlotWakeups, Wakeups

__all__ = [
    "WAITER_GONE_SECONDS",
    "ChunkCounts",
    "ChunkTally",
    "Claim",
    "DomainWriters",
    "JobStore",
    "JobTable",
    "LeaseLeft",
    "LimitSettings",
    "NoWriterSlot",
    "SlotWakeups",
    "TableProgress",
    "Wakeups",
    "utc_now",
]
