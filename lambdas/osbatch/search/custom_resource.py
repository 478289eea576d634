"""The provisioning custom resource's contract and its lifecycle, shared by infra/ (properties) and Lambda.

Create and Update provision the pipeline's search side with the same code `osbatch setup` runs; it is
idempotent, so an Update with a changed config changes only what differs, and a rolled-back Update
(CloudFormation sends the old properties) restores the old state. Delete leaves the cluster's index,
connectors, models and search pipelines in place: queries and other stacks may depend on them, and a stack
update that replaces the resource must not take search down. The physical id is the pipeline's name, so a
changed config is an in-place update, never a replacement.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

from aws_lambda_powertools.utilities.parser.models import (
    CloudFormationCustomResourceCreateModel,
    CloudFormationCustomResourceDeleteModel,
    CloudFormationCustomResourceUpdateModel,
)
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from osbatch.config import PipelineConfig, parse_pipeline
from osbatch.search.connectors import ConnectorTarget
from osbatch.search.provision import Provisioned, provision_search

RESOURCE_TYPE = "Custom::OsbatchSearch"
PHYSICAL_ID_PREFIX = "osbatch-search"


class SearchResourceProperties(BaseModel):
    """ResourceProperties. CloudFormation passes every value as a string, so the config travels as JSON."""

    # ServiceToken rides along in ResourceProperties; the framework, not this code, uses it.
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    config: str = Field(alias="Config", description="the validated pipeline config, as JSON")
    endpoint: str = Field(alias="Endpoint", min_length=1)
    connector_role_arn: str = Field("", alias="ConnectorRoleArn")
    region: str = Field(alias="Region", min_length=1, description="default region of connectors")
    code_version: str = Field("", alias="CodeVersion", description="changes when provisioning code does")

    def pipeline(self) -> PipelineConfig:
        return parse_pipeline(json.loads(self.config), "custom resource property Config")

    def connector_target(self) -> ConnectorTarget:
        return ConnectorTarget(role_arn=self.connector_role_arn or None, region=self.region)


class CreateEvent(CloudFormationCustomResourceCreateModel):
    resource_properties: SearchResourceProperties = Field(alias="ResourceProperties")


class UpdateEvent(CloudFormationCustomResourceUpdateModel):
    resource_properties: SearchResourceProperties = Field(alias="ResourceProperties")


class DeleteEvent(CloudFormationCustomResourceDeleteModel):
    # Not parsed into SearchResourceProperties: a Delete must succeed even for properties this code
    # version would no longer accept, or the stack could never be deleted.
    request_type: Literal["Delete"] = Field(alias="RequestType")


SearchResourceEvent = Annotated[CreateEvent | UpdateEvent | DeleteEvent, Field(discriminator="request_type")]
EVENT = TypeAdapter(SearchResourceEvent)


class ProvisionResponse(BaseModel):
    """What the Provider framework reads back: the physical id and Data (model name -> model id)."""

    model_config = ConfigDict(populate_by_name=True)

    physical_resource_id: str = Field(alias="PhysicalResourceId")
    data: dict[str, str] = Field(default_factory=dict, alias="Data")


def physical_resource_id(config: PipelineConfig) -> str:
    return f"{PHYSICAL_ID_PREFIX}-{config.name}"


def parse_event(event: dict[str, Any]) -> CreateEvent | UpdateEvent | DeleteEvent:
    return EVENT.validate_python(event)


def handle(
    event: CreateEvent | UpdateEvent | DeleteEvent, client_for: Callable[[str], Any]
) -> tuple[ProvisionResponse, Provisioned | None]:
    """Run one lifecycle event; client_for(endpoint) gives the OpenSearch client (Create, Update)."""
    if isinstance(event, DeleteEvent):
        # Left in place on purpose (module docstring); the same id, as the framework requires on Delete.
        return ProvisionResponse(physical_resource_id=event.physical_resource_id), None
    properties = event.resource_properties
    config = properties.pipeline()
    result = provision_search(client_for(properties.endpoint), config, target=properties.connector_target())
    response = ProvisionResponse(physical_resource_id=physical_resource_id(config), data=result.model_ids)
    return response, result
