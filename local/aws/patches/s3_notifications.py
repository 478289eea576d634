"""GetBucketNotificationConfiguration names EventBridgeConfiguration, as S3 does once it is on.

moto 5.2.5 stores a bucket's EventBridge setting (and sends its events) but leaves it out of
GetBucketNotificationConfiguration, so anything that reads the setting back (`osbatch submit` looking for
why an upload started no job) would see it off. S3's answer has an empty `EventBridgeConfiguration`
element when events go to EventBridge (Amazon S3 API Reference, GetBucketNotificationConfiguration,
docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketNotificationConfiguration.html).
"""

from __future__ import annotations

from typing import Any

from moto.s3.responses import S3Response

_original = S3Response.get_bucket_notification


def _get_bucket_notification(self: S3Response) -> Any:
    config = self.backend.get_bucket_notification_configuration(self.bucket_name)
    if config is None or config.event_bridge is None:
        return _original(self)
    original_serialized = self.serialized

    def with_event_bridge(result: Any) -> Any:
        body = getattr(result, "result", None)
        if isinstance(body, dict):
            body["EventBridgeConfiguration"] = {}
        return original_serialized(result)

    self.serialized = with_event_bridge  # type: ignore[method-assign,assignment]
    try:
        return _original(self)
    finally:
        del self.serialized


def install() -> None:
    S3Response.get_bucket_notification = _get_bucket_notification  # type: ignore[method-assign]
