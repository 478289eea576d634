"""Lambda's SQS poller, emulated: batches, partial batch responses, visibility timeouts, DLQ redrive.

moto 5.2.5 delivers inline from `Queue.add_message`: one message per invocation, inside the sender's
request, and it deletes the message unless the function errored, so a `batchItemFailures` response is
ignored and failed messages are lost. We detach moto's mappings from the queues and poll instead:

- a batch of up to BatchSize messages is received with the queue's visibility timeout and passed in one
  event (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html);
- on success the batch is deleted; with `ReportBatchItemFailures` only the messages not listed in
  `batchItemFailures` are deleted; a function error keeps the whole batch
  (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html);
- messages that stay become visible again after VisibilityTimeout x time-scale (at least 1 s, moto keeps
  whole seconds), are received again, and moto's receive moves them to the DLQ after maxReceiveCount;
- batches run concurrently: up to five at a time per mapping, as Lambda starts, or the mapping's
  ScalingConfig.MaximumConcurrency (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html).
  A throttled batch stays in the queue like a failed one.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from moto.awslambda.models import EventSourceMapping, LambdaBackend, lambda_backends
from moto.sqs.models import Message, sqs_backends

from local.aws.patches import lambda_invoke
from local.aws.sandbox import InvocationResult, Throttled

LOG = logging.getLogger(__name__)

_IDLE_SLEEP_S = 0.1
DEFAULT_CONCURRENT_BATCHES = 5
_MAX_POLLER_THREADS = 64


class SqsPoller:
    def __init__(self, time_scale: float) -> None:
        self.time_scale = time_scale
        self._in_flight: Counter[str] = Counter()  # mapping UUID -> batches being processed
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(_MAX_POLLER_THREADS, thread_name_prefix="sqs-batch")
        self._thread = threading.Thread(target=self._loop, name="sqs-lambda-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                busy = self.poll_once()
            except Exception:
                LOG.exception("SQS poller iteration failed")
                busy = False
            if not busy:
                time.sleep(_IDLE_SLEEP_S)

    def poll_once(self) -> bool:
        delivered = False
        for account in list(lambda_backends.values()):
            for backend in list(account.values()):
                for mapping in list(backend._event_source_mappings.values()):
                    if mapping.enabled and mapping.event_source_arn.split(":")[2] == "sqs":
                        delivered = self._deliver(backend, mapping) or delivered
        return delivered

    def _deliver(self, backend: LambdaBackend, mapping: EventSourceMapping) -> bool:
        _, _, _, region, account_id, queue_name = mapping.event_source_arn.split(":", 5)
        sqs = sqs_backends[account_id][region]
        queue = sqs.queues.get(queue_name)
        if queue is None:
            return False
        try:
            function = backend.get_function(mapping.function_arn)
        except Exception:  # deleted behind the mapping's back: leave the messages alone
            return False
        limit = int((mapping.scaling_config or {}).get("MaximumConcurrency") or DEFAULT_CONCURRENT_BATCHES)
        started = False
        while True:
            with self._lock:
                if self._in_flight[mapping.uuid] >= limit:
                    return started
            visibility = int(getattr(queue, "visibility_timeout", 30) or 30)
            messages = sqs.receive_message(queue_name, int(mapping.batch_size or 10), 0, visibility, ["All"])
            if not messages:
                return started
            with self._lock:
                self._in_flight[mapping.uuid] += 1
            self._executor.submit(self._process, function, mapping, queue, messages)
            started = True

    def _process(
        self, function: Any, mapping: EventSourceMapping, queue: Any, messages: list[Message]
    ) -> None:
        _, _, _, region, account_id, queue_name = mapping.event_source_arn.split(":", 5)
        sqs = sqs_backends[account_id][region]
        try:
            records = [_record(m, mapping.event_source_arn, region, bool(queue.fifo_queue)) for m in messages]
            try:
                result = lambda_invoke.run(function, {"Records": records})
            except Throttled as throttled:
                LOG.info("batch from %s throttled: %s", queue_name, throttled)
                result = InvocationResult.error("TooManyRequestsException", str(throttled))
            failed = failed_message_ids(result, mapping.function_response_types, [m.id for m in messages])
            visibility = int(getattr(queue, "visibility_timeout", 30) or 30)
            retry_after = max(1, math.ceil(visibility * self.time_scale))
            for message in messages:
                if message.id in failed:
                    sqs.change_message_visibility(queue_name, str(message.receipt_handle), retry_after)
                else:
                    sqs.delete_message(queue_name, str(message.receipt_handle))
            if failed:
                LOG.info(
                    "%d of %d messages from %s stay in the queue", len(failed), len(messages), queue_name
                )
        except Exception:
            LOG.exception("SQS batch from %s failed", queue_name)
        finally:
            with self._lock:
                self._in_flight[mapping.uuid] -= 1


def failed_message_ids(
    result: InvocationResult, response_types: list[str] | None, message_ids: list[str]
) -> set[str]:
    """Which messages of a batch stay in the queue, following Lambda's partial batch response rules."""
    everything = set(message_ids)
    if result.function_error:
        return everything
    if "ReportBatchItemFailures" not in (response_types or []):
        return set()
    try:
        response = json.loads(result.payload or b"null")
    except ValueError:
        return everything
    if not response:
        return set()
    if not isinstance(response, dict):
        return everything
    failures = response.get("batchItemFailures")
    if not failures:
        return set()
    if not isinstance(failures, list):
        return everything
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in everything:
            return everything  # an unknown or empty identifier fails the whole batch
        failed.add(identifier)
    return failed


def _record(message: Message, queue_arn: str, region: str, fifo: bool) -> dict[str, Any]:
    attributes = {
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "SentTimestamp": str(message.sent_timestamp),
        "SenderId": str(message.sender_id),
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    if fifo:
        attributes |= {
            "MessageGroupId": str(message.group_id),
            "MessageDeduplicationId": str(message.deduplication_id),
            "SequenceNumber": str(message.sequence_number),
        }
    return {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
            for name, value in message.message_attributes.items()
        },
        "md5OfBody": message.body_md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


_original_create_mapping = LambdaBackend.create_event_source_mapping


def _create_mapping_detached(self: LambdaBackend, spec: dict[str, Any]) -> EventSourceMapping:
    mapping = _original_create_mapping(self, spec)
    # Detach from moto's inline delivery; the poller owns SQS -> Lambda.
    for queue in sqs_backends[self.account_id][self.region_name].queues.values():
        queue.lambda_event_source_mappings.pop(mapping.function_arn, None)
    return mapping


def install(time_scale: float) -> SqsPoller:
    LambdaBackend.create_event_source_mapping = _create_mapping_detached  # type: ignore[method-assign]
    poller = SqsPoller(time_scale)
    poller.start()
    return poller
