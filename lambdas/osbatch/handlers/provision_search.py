"""CloudFormation custom resource (through the CDK Provider framework) -> the pipeline's search side.

Create and Update provision it on the domain, signed with SigV4 as this function's role; Delete leaves it in
place (osbatch.search.custom_resource says why). Returns the physical id and the model ids as Data.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from osbatch.handlers.observability import logger, tracer
from osbatch.handlers.wiring import opensearch_at
from osbatch.search.custom_resource import handle, parse_event


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(event)
    logger.append_keys(request_type=request.request_type, logical_resource_id=request.logical_resource_id)
    response, result = handle(request, opensearch_at)
    for change in result.changes if result else []:
        logger.info(change.describe())
    return response.model_dump(by_alias=True)
