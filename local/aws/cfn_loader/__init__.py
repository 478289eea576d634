"""A generic loader for `cdk synth` output: deploy a stack's template into the local AWS emulator."""

from local.aws.cfn_loader.deploy import DeployError, deploy_assembly
from local.aws.cfn_loader.intrinsics import TemplateError
from local.aws.cfn_loader.stack import DeployedStack, StackResource, load_stack, stack_path

__all__ = [
    "DeployError",
    "DeployedStack",
    "StackResource",
    "TemplateError",
    "deploy_assembly",
    "load_stack",
    "stack_path",
]
