"""Path-style SageMaker calls, as ML Commons' batch connector blueprint makes them, for moto.

The SageMaker batch connector blueprint of AWS's page "Using an OpenSearch Ingestion pipeline with
machine learning offline batch inference"
(https://docs.aws.amazon.com/opensearch-service/latest/developerguide/configure-clients-ml-commons-batch.html)
names the operation in the URL path (`POST https://api.sagemaker.<region>.amazonaws.com/CreateTransformJob`,
and a GET with a body for DescribeTransformJob). moto serves SageMaker's JSON protocol only: `POST /`
with `X-Amz-Target: SageMaker.<Operation>`. This WSGI wrapper turns `/sagemaker/<Operation>` (the local
connector's URLs, search/batch_connector.py) into that request, body and signature untouched; the
signature's credential scope already names sagemaker, which is how moto picks the service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

PATH_PREFIX = "/sagemaker/"
OPERATIONS = frozenset({"CreateTransformJob", "DescribeTransformJob", "StopTransformJob"})
JSON_PROTOCOL = "application/x-amz-json-1.1"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def with_sagemaker_paths(app: WsgiApp) -> WsgiApp:
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        operation = path.removeprefix(PATH_PREFIX)
        if path.startswith(PATH_PREFIX) and operation in OPERATIONS:
            environ = {
                **environ,
                "PATH_INFO": "/",
                "REQUEST_METHOD": "POST",
                "HTTP_X_AMZ_TARGET": f"SageMaker.{operation}",
                "CONTENT_TYPE": JSON_PROTOCOL,
            }
        return app(environ, start_response)

    return wrapped
