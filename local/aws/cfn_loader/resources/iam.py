"""AWS::IAM::Role, Policy, ManagedPolicy and AWS::KMS::Key, Alias.

moto does not enforce IAM, but Lambda's CreateFunction checks that the role exists, and policies are kept
so `osbatch` can show what a deployment grants.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from local.aws.cfn_loader.resources.base import Created, DeployContext, error_code, tags_dict


def role(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    iam = ctx.client("iam")
    name = props.get("RoleName") or ctx.physical_name(logical_id)
    trust = json.dumps(props.get("AssumeRolePolicyDocument", {}))
    try:
        found = iam.get_role(RoleName=name)["Role"]
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
        action = "exists"
    except ClientError as error:
        if error_code(error) != "NoSuchEntity":
            raise
        optional = {k: props[k] for k in ("Path", "Description", "MaxSessionDuration") if k in props}
        found = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, **optional)["Role"]
        action = "created"
    for policy in props.get("Policies", []):
        iam.put_role_policy(
            RoleName=name,
            PolicyName=policy["PolicyName"],
            PolicyDocument=json.dumps(policy["PolicyDocument"]),
        )
    missing = []
    for arn in props.get("ManagedPolicyArns", []):
        try:
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            missing.append(arn.split("/")[-1])
    if missing:
        ctx.note_once(
            "managed-policies", f"AWS managed policies are not loaded locally: {', '.join(missing)}"
        )
    return Created(name, {"Arn": found["Arn"], "RoleId": found["RoleId"]}, action)


def policy(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    iam = ctx.client("iam")
    name, document = props["PolicyName"], json.dumps(props["PolicyDocument"])
    for role_name in props.get("Roles", []):
        iam.put_role_policy(RoleName=role_name, PolicyName=name, PolicyDocument=document)
    for user in props.get("Users", []):
        iam.put_user_policy(UserName=user, PolicyName=name, PolicyDocument=document)
    for group in props.get("Groups", []):
        iam.put_group_policy(GroupName=group, PolicyName=name, PolicyDocument=document)
    return Created(name, {"Id": name}, "applied")


def managed_policy(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    iam = ctx.client("iam")
    name = props.get("ManagedPolicyName") or ctx.physical_name(logical_id, max_length=128)
    document = json.dumps(props["PolicyDocument"])
    arn = ctx.arn("iam", f"policy{props.get('Path', '/')}{name}", region=False)
    try:
        optional = {k: props[k] for k in ("Path", "Description") if k in props}
        arn = iam.create_policy(PolicyName=name, PolicyDocument=document, **optional)["Policy"]["Arn"]
        action = "created"
    except ClientError as error:
        if error_code(error) != "EntityAlreadyExists":
            raise
        for version in iam.list_policy_versions(PolicyArn=arn)["Versions"]:
            if not version["IsDefaultVersion"]:
                iam.delete_policy_version(PolicyArn=arn, VersionId=version["VersionId"])
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=True)
        action = "updated"
    for role_name in props.get("Roles", []):
        iam.attach_role_policy(RoleName=role_name, PolicyArn=arn)
    return Created(arn, {"PolicyArn": arn}, action)


def kms_key(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    kms = ctx.client("kms")
    previous = ctx.previous.get(logical_id)
    if previous is not None:  # keys have no name: the last deployment's record is how we find it
        try:
            metadata = kms.describe_key(KeyId=previous.physical_id)["KeyMetadata"]
            return Created(metadata["KeyId"], {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]}, "exists")
        except ClientError as error:
            if error_code(error) != "NotFoundException":
                raise
    optional: dict[str, Any] = {k: props[k] for k in ("Description", "KeyUsage", "KeySpec") if k in props}
    if "KeyPolicy" in props:
        optional["Policy"] = json.dumps(props["KeyPolicy"])
    tags = tags_dict(props.get("Tags"))
    if tags:
        optional["Tags"] = [{"TagKey": k, "TagValue": v} for k, v in tags.items()]
    metadata = kms.create_key(**optional)["KeyMetadata"]
    if props.get("EnableKeyRotation") in (True, "true"):
        kms.enable_key_rotation(KeyId=metadata["KeyId"])
    return Created(metadata["KeyId"], {"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]}, "created")


def kms_alias(ctx: DeployContext, logical_id: str, props: dict[str, Any]) -> Created:
    kms = ctx.client("kms")
    try:
        kms.create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
        action = "created"
    except ClientError as error:
        if error_code(error) != "AlreadyExistsException":
            raise
        kms.update_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
        action = "updated"
    return Created(props["AliasName"], {}, action)


HANDLERS = {
    "AWS::IAM::Role": role,
    "AWS::IAM::Policy": policy,
    "AWS::IAM::ManagedPolicy": managed_policy,
    "AWS::KMS::Key": kms_key,
    "AWS::KMS::Alias": kms_alias,
}
