"""Job items (`item = "job"`): one per job, with its state and what each step recorded.

This is osbatch's Task API: `osbatch jobs` and `osbatch status` read it, and every workflow step writes
the transitions it makes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from osbatch.contracts import JOBS_BY_PIPELINE_INDEX
from osbatch.dal.items import TableItems, condition_failed, plain
from osbatch.dal.keys import JOB_ITEM, job_key
from osbatch.models import JobStateName, SourceObject


class JobItems(TableItems):
    def create(self, job_id: str, pipeline: str, source: SourceObject) -> bool:
        """Record a new job; False if it already exists (a duplicate event), which is not an error."""
        now = self._clock()
        item = {
            **job_key(job_id),
            "pipeline": pipeline,
            "state": JobStateName.CREATED.value,
            "source": source.uri,
            "etag": source.etag,
            "size": source.size,
            "created_at": now,
            "updated_at": now,
        }
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(job_id)")
        except ClientError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def update(self, job_id: str, state: JobStateName | None = None, **fields: Any) -> None:
        """Set the state and any other attributes; `None` values are skipped."""
        values = {name: value for name, value in fields.items() if value is not None}
        if state is not None:
            values["state"] = state.value
        values["updated_at"] = self._clock()
        names = {f"#{name}": name for name in values}
        self._table.update_item(
            Key=job_key(job_id),
            UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in values),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":{name}": value for name, value in values.items()},
        )

    def throttled_since(self, job_id: str, now: float) -> float:
        """When StartJob was first throttled (set once, on the first throttled attempt): the start of the
        pipeline's retry_time_window. Conditional on nothing, so every retry reads the same first time."""
        return self._first_time(job_id, "throttled_since", now)

    def slot_wait_since(self, job_id: str, now: float) -> float:
        """When StartJob first found no free job slot: the start of the pipeline's slot_wait_window, a
        clock of its own so that queueing for a slot never uses up the throttling window."""
        return self._first_time(job_id, "slot_wait_since", now)

    def _first_time(self, job_id: str, attribute: str, now: float) -> float:
        response = self._table.update_item(
            Key=job_key(job_id),
            UpdateExpression="SET #first = if_not_exists(#first, :now)",
            ExpressionAttributeNames={"#first": attribute},
            ExpressionAttributeValues={":now": Decimal(str(now))},
            ReturnValues="ALL_NEW",
        )
        return float(response["Attributes"][attribute])

    def get(self, job_id: str) -> dict[str, Any] | None:
        response = self._table.get_item(Key=job_key(job_id), ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return plain(item) if item else None

    def list_jobs(self, pipeline: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first. With a pipeline this is one GSI query; without, a filtered scan (small tables)."""
        if pipeline:
            items = self._query(
                IndexName=JOBS_BY_PIPELINE_INDEX,
                KeyConditionExpression=Key("pipeline").eq(pipeline),
                ScanIndexForward=False,
            )
            jobs = [plain(item) for _, item in zip(range(limit), items, strict=False)]
        else:
            jobs = [plain(item) for item in self._scan(FilterExpression=Attr("item").eq(JOB_ITEM))]
            jobs.sort(key=lambda job: job.get("created_at", ""), reverse=True)
            jobs = jobs[:limit]
        return jobs
