"""The job table as one adapter: every kind of item (dal/keys.py) through one boto3 Table resource.

Each kind lives in its own module; a step that needs only one of them can be typed with that kind
(JobItems, ChunkItems, BulkLoadLeases, JobSlots), and the handlers' wiring builds one JobTable for all.
"""

from __future__ import annotations

from osbatch.dal.bulk_load import BulkLoadLeases
from osbatch.dal.chunks import ChunkItems
from osbatch.dal.jobs import JobItems
from osbatch.dal.slots import JobSlots


class JobTable(JobItems, ChunkItems, BulkLoadLeases, JobSlots):
    pass
