"""AWS::StepFunctions::StateMachine: the definition is deployed as written (after substitutions)."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from local.aws.cfn_loader.resources.base import Created, DeployContext, error_code, tags_dict


def definition(props: dict[str, Any]) -> str:
    """DefinitionString or Definition, with DefinitionSubstitutions applied.

    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-stepfunctions-statemachine.html
    """
    if "DefinitionS3Location" in props:
        raise ValueError("DefinitionS3Location is not supported by the local loader; inline the definition")
    text = props.get("DefinitionString")
    if text is None:
        text = json.dumps(props.get("Definition", {}))
    for key, value in props.get("DefinitionSubstitutions", {}).items():
        text = text.replace("${" + key + "}", str(value))
    return str(text)


def state_machine(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    sfn = ctx.client("stepfunctions")
    name = props.get("StateMachineName") or ctx.physical_name(logical_id, max_length=80)
    arn = ctx.arn("states", f"stateMachine:{name}")
    body = definition(props)
    try:
        sfn.describe_state_machine(stateMachineArn=arn)
        sfn.update_state_machine(stateMachineArn=arn, definition=body, roleArn=props["RoleArn"])
        action = "updated"
    except ClientError as error:
        if error_code(error) != "StateMachineDoesNotExist":
            raise
        tags = [{"key": k, "value": v} for k, v in tags_dict(props.get("Tags")).items()]
        arn = sfn.create_state_machine(
            name=name,
            definition=body,
            roleArn=props["RoleArn"],
            type=props.get("StateMachineType", "STANDARD"),
            tags=tags,
        )["stateMachineArn"]
        action = "created"
    return Created(arn, {"Arn": arn, "Name": name}, action)


HANDLERS = {"AWS::StepFunctions::StateMachine": state_machine}
