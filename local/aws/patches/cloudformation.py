"""What moto 5.2.5's CloudFormation drops from our template, and the local run needs. Each one is a gap:

- `AWS::Lambda::Function` on update: a layer's `Ref` reaches `_get_layers_data` as the `LayerVersion`
  object rather than its ARN (moto resolves Ref to `physical_resource_id`, which LayerVersion lacks), so
  `update_stack` fails. Objects are mapped to their `.arn`.
- `AWS::Lambda::Function` `LoggingConfig` is ignored, so logs would land in /aws/lambda/<name> instead of
  the log group the stack made for the function. It is recorded as `logging_config`.
- `AWS::S3::Bucket` `NotificationConfiguration.EventBridgeConfiguration` is ignored, so the input bucket
  would never send Object Created events to EventBridge. It is applied on create and update.
- `AWS::StepFunctions::StateMachine` is created in moto's plain Step Functions backend, while with
  `execute_state_machine` on, the API (StartExecution, DescribeStateMachine) serves the executing
  backend, which would not know the machine. The only users of the plain backend's name in
  moto.stepfunctions.models are those CloudFormation methods, so the name is pointed at the executing one.
- `AWS::KMS::Key` `Tags` are CloudFormation's `{Key, Value}`, but moto hands them to the KMS tagger, which
  wants the KMS API's `{TagKey, TagValue}`, so a tagged key fails `create_stack` with KeyError 'TagKey'.
  They are renamed before moto reads them.
- A resource that an update removes from the template is deleted (moto.cloudformation.parsing
  `ResourceMap.update`, its "Remove" pass) but stays in the map's `_parsed_resources` cache; `delete()`
  pops it, `update()` does not. A later update that adds the same logical id back finds the stale object
  in the cache (`ResourceMap.__getitem__` creates only what the cache lacks), so nothing is created: the
  stack lists the resource, the service has none. Deploying pipelines A, then B, then A again lost A's
  EventBridge rule this way. Removed logical ids are dropped from the cache once the update has run, so
  re-adding one creates it, as CloudFormation does: an update deletes a resource the new template no
  longer declares unless its DeletionPolicy retains it ("DeletionPolicy attribute",
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html), and
  one declared again later is created anew, with a new generated name ("Update behaviors of stack
  resources", .../UserGuide/using-cfn-updating-stacks-update-behaviors.html).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from moto.awslambda.models import LambdaFunction, LayerVersion
from moto.cloudformation.parsing import ResourceMap
from moto.kms.models import Key as KmsKey
from moto.s3.models import FakeBucket
from moto.stepfunctions import models as stepfunctions_models
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

LOG = logging.getLogger(__name__)


def _layer_arns(self: LambdaFunction, layers: list[Any]) -> Any:
    arns = [layer.arn if isinstance(layer, LayerVersion) else layer for layer in layers]
    return _original_layers_data(self, arns)


def _record_logging_config(function: LambdaFunction, cloudformation_json: dict[str, Any]) -> LambdaFunction:
    function.logging_config = cloudformation_json.get("Properties", {}).get("LoggingConfig")  # type: ignore[attr-defined]
    return function


def _create_function(
    cls: type[LambdaFunction], resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any
) -> Any:
    created = _original_create_function.__func__(cls, resource_name, cloudformation_json, *args, **kwargs)  # type: ignore[attr-defined]
    return _record_logging_config(created, cloudformation_json)


def _update_function(cls: type[LambdaFunction], **kwargs: Any) -> Any:
    # moto's parser passes every argument by keyword here (parsing.parse_and_update_resource).
    updated = _original_update_function.__func__(cls, **kwargs)  # type: ignore[attr-defined]
    return _record_logging_config(updated, kwargs["cloudformation_json"])


def _apply_event_bridge(bucket: FakeBucket, cloudformation_json: dict[str, Any]) -> FakeBucket:
    notifications = cloudformation_json.get("Properties", {}).get("NotificationConfiguration") or {}
    unsupported = sorted(set(notifications) - {"EventBridgeConfiguration"})
    if unsupported:
        LOG.warning("bucket %s: NotificationConfiguration %s not applied locally", bucket.name, unsupported)
    if notifications.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        bucket.set_notification_configuration({"EventBridgeConfiguration": {}})
    return bucket


def _create_bucket(
    cls: type[FakeBucket], resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any
) -> Any:
    created = _original_create_bucket.__func__(cls, resource_name, cloudformation_json, *args, **kwargs)  # type: ignore[attr-defined]
    return _apply_event_bridge(created, cloudformation_json)


def _update_bucket(cls: type[FakeBucket], **kwargs: Any) -> Any:
    updated = _original_update_bucket.__func__(cls, **kwargs)  # type: ignore[attr-defined]
    return _apply_event_bridge(updated, kwargs["cloudformation_json"])


def _create_key(
    cls: type[KmsKey], resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any
) -> Any:
    properties = cloudformation_json.get("Properties", {})
    tags = [{"TagKey": tag["Key"], "TagValue": tag["Value"]} for tag in properties.get("Tags", [])]
    renamed = {**cloudformation_json, "Properties": {**properties, "Tags": tags}}
    return _original_create_key.__func__(cls, resource_name, renamed, *args, **kwargs)  # type: ignore[attr-defined]


_moto_update = ResourceMap.update


@functools.wraps(_moto_update)
def _update_forgetting_removed(self: ResourceMap, template: dict[str, Any], parameters: Any = None) -> None:
    removed = self.build_resource_diff(template, parameters)["Remove"]
    _moto_update(self, template, parameters)
    for logical_id in removed:
        self._parsed_resources.pop(logical_id, None)


_original_create_key = KmsKey.create_from_cloudformation_json
_original_layers_data = LambdaFunction._get_layers_data
_original_create_function = LambdaFunction.create_from_cloudformation_json
_original_update_function = LambdaFunction.update_from_cloudformation_json
_original_create_bucket = FakeBucket.create_from_cloudformation_json
_original_update_bucket = FakeBucket.update_from_cloudformation_json


def install() -> None:
    stepfunctions_models.stepfunctions_backends = stepfunctions_parser_backends  # type: ignore[assignment]
    LambdaFunction._get_layers_data = _layer_arns  # type: ignore[method-assign,assignment]
    LambdaFunction.create_from_cloudformation_json = classmethod(_create_function)  # type: ignore[method-assign,assignment]
    LambdaFunction.update_from_cloudformation_json = classmethod(_update_function)  # type: ignore[method-assign,assignment]
    FakeBucket.create_from_cloudformation_json = classmethod(_create_bucket)  # type: ignore[method-assign,assignment]
    FakeBucket.update_from_cloudformation_json = classmethod(_update_bucket)  # type: ignore[method-assign,assignment]
    KmsKey.create_from_cloudformation_json = classmethod(_create_key)  # type: ignore[method-assign,assignment]
    install_update_fix()


def install_update_fix() -> None:
    ResourceMap.update = _update_forgetting_removed  # type: ignore[method-assign]
