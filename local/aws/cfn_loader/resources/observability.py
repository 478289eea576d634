"""AWS::Logs::LogGroup, AWS::CloudWatch::Alarm / CompositeAlarm / Dashboard, AWS::SSM::Parameter."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from local.aws.cfn_loader.resources.base import Created, DeployContext, error_code

# CloudFormation's Alarm properties carry PutMetricAlarm's parameter names.
_ALARM = (
    "ActionsEnabled",
    "AlarmActions",
    "AlarmDescription",
    "ComparisonOperator",
    "DatapointsToAlarm",
    "Dimensions",
    "EvaluateLowSampleCountPercentile",
    "EvaluationPeriods",
    "ExtendedStatistic",
    "InsufficientDataActions",
    "MetricName",
    "Metrics",
    "Namespace",
    "OKActions",
    "Period",
    "Statistic",
    "Threshold",
    "ThresholdMetricId",
    "TreatMissingData",
    "Unit",
)


def log_group(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    logs = ctx.client("logs")
    name = props.get("LogGroupName") or ctx.physical_name(logical_id, max_length=512)
    action = "created"
    try:
        logs.create_log_group(
            logGroupName=name, **({"kmsKeyId": props["KmsKeyId"]} if "KmsKeyId" in props else {})
        )
    except ClientError as error:
        if error_code(error) != "ResourceAlreadyExistsException":
            raise
        action = "exists"
    if "RetentionInDays" in props:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))
    return Created(name, {"Arn": ctx.arn("logs", f"log-group:{name}:*")}, action)


def alarm(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("AlarmName") or ctx.physical_name(logical_id, max_length=255)
    arguments = {key: props[key] for key in _ALARM if key in props}
    for key in ("EvaluationPeriods", "Period", "DatapointsToAlarm"):
        if key in arguments:
            arguments[key] = int(arguments[key])
    if "Threshold" in arguments:
        arguments["Threshold"] = float(arguments["Threshold"])
    ctx.client("cloudwatch").put_metric_alarm(AlarmName=name, **arguments)  # an upsert
    return Created(name, {"Arn": ctx.arn("cloudwatch", f"alarm:{name}")}, "applied")


def composite_alarm(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("AlarmName") or ctx.physical_name(logical_id, max_length=255)
    optional = {
        k: props[k]
        for k in (
            "ActionsEnabled",
            "AlarmActions",
            "AlarmDescription",
            "InsufficientDataActions",
            "OKActions",
        )
        if k in props
    }
    ctx.client("cloudwatch").put_composite_alarm(AlarmName=name, AlarmRule=props["AlarmRule"], **optional)
    return Created(name, {"Arn": ctx.arn("cloudwatch", f"alarm:{name}")}, "applied")


def dashboard(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("DashboardName") or ctx.physical_name(logical_id, max_length=255)
    ctx.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=props["DashboardBody"])
    return Created(name, {}, "applied")


def ssm_parameter(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    name = props.get("Name") or ctx.physical_name(logical_id, max_length=1011)
    optional = {k: props[k] for k in ("Description", "AllowedPattern", "Tier", "DataType") if k in props}
    ctx.client("ssm").put_parameter(
        Name=name, Value=str(props["Value"]), Type=props.get("Type", "String"), Overwrite=True, **optional
    )
    return Created(name, {"Type": props.get("Type", "String"), "Value": props["Value"]}, "applied")


HANDLERS = {
    "AWS::Logs::LogGroup": log_group,
    "AWS::CloudWatch::Alarm": alarm,
    "AWS::CloudWatch::CompositeAlarm": composite_alarm,
    "AWS::CloudWatch::Dashboard": dashboard,
    "AWS::SSM::Parameter": ssm_parameter,
}
