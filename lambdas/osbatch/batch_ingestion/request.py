"""The body of ML Commons' `POST /_plugins/_ml/_batch_ingestion`, accepted as is.

OpenSearch documents it in "Asynchronous batch ingestion", the guide and its API page:
https://docs.opensearch.org/latest/ml-commons-plugin/remote-models/async-batch-ingestion/
https://docs.opensearch.org/latest/ml-commons-plugin/api/async-batch-ingest/

One file: its field_map and ingest_fields map each line to a document, as a pipeline's sink does. Several
files: each file writes the fields whose paths name it (`source[N].$...`, no prefix meaning source[0]) into
the document of its `_id`, with update + doc_as_upsert, so the files join in the index, in any file or line
order, without holding any of them in memory. A file with no `_id` path of its own (the third file of the
documented OpenAI example) is joined by the `_id` paths of the others, tried in order.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from osbatch.field_map import ID_KEY, FieldMapper

_PREFIX = re.compile(r"^source\[(\d+)\]\.(?=\$)")
CREDENTIAL_REFUSED = (
    "the request has a 'credential' key: osbatch never takes credentials in a request body. AWS access "
    "comes from the standard credential chain (environment, profile, role), and an OpenAI key from the "
    "OPENAI_API_KEY environment variable or Secrets Manager. Remove 'credential' and run it again"
)


class BatchRequestError(ValueError):
    """The body cannot run. The message names the field; it never quotes the body (it may hold secrets)."""


def parse_batch_request(data: Any) -> BatchIngestRequest:
    if isinstance(data, dict) and "credential" in data:
        raise BatchRequestError(credential_refused(data))
    try:
        return BatchIngestRequest.model_validate(data)
    except ValidationError as error:
        problems = []
        for issue in error.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in issue["loc"])
            message = issue["msg"].removeprefix("Value error, ")
            if issue["type"] == "extra_forbidden":
                message = "unknown field (check the spelling)"
            problems.append(f"{where}: {message}" if where else message)
        raise BatchRequestError("; ".join(problems)) from None


def credential_refused(data: dict[str, Any]) -> str:
    """Refused rather than ignored: a run with other credentials than the body names could read another
    account's objects. The message shows the body without the block, so the fix is a copy; the block
    itself (the only place the documented bodies put secrets) is never echoed."""
    rest = {key: value for key, value in data.items() if key != "credential"}
    return f"{CREDENTIAL_REFUSED}; the same request without it:\n{json.dumps(rest, indent=2)}"


class DataSource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["s3", "openAI", "file"]
    source: list[str] = Field(min_length=1)


class BatchIngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    index_name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=255)
    field_map: dict[str, str | list[str]] = Field(default_factory=dict)
    ingest_fields: list[str] = Field(default_factory=list)
    data_source: DataSource

    @model_validator(mode="after")
    def _sources_exist(self) -> BatchIngestRequest:
        files = len(self.data_source.source)
        for expression in _every_expression(self):
            number = _file_of(expression)
            if number >= files:
                raise ValueError(
                    f"'{expression}' reads source[{number}], but data_source has {files} file(s)"
                )
        for number in range(files):
            self.mapper(number)  # every file's mapping builds, so mistakes surface before anything is read
        return self

    @property
    def joins(self) -> bool:
        return len(self.data_source.source) > 1

    def mapper(self, number: int) -> FieldMapper:
        """The mapper of file `number`: the fields its paths fill, and how its lines find their document."""
        field_map: dict[str, str | list[str]] = {}
        for field, expressions in self.field_map.items():
            if field == ID_KEY:
                continue
            mine = _of_file(expressions, number)
            if mine:
                field_map[field] = mine if len(mine) > 1 else mine[0]
        ingest_fields = [_strip(e) for e in self.ingest_fields if _file_of(e) == number]
        ids = _of_file(self.field_map.get(ID_KEY, []), number)
        if not ids and self.joins:
            ids = [_strip(e) for e in _as_list(self.field_map.get(ID_KEY, []))]
        if ids:
            field_map[ID_KEY] = ids if len(ids) > 1 else ids[0]
        elif self.joins:
            raise ValueError(
                "field_map._id is needed to join several files: each line finds its document by it"
            )
        return FieldMapper(field_map, ingest_fields)


def _as_list(expressions: str | list[str]) -> list[str]:
    return [expressions] if isinstance(expressions, str) else list(expressions)


def _file_of(expression: str) -> int:
    match = _PREFIX.match(expression)
    return int(match.group(1)) if match else 0


def _strip(expression: str) -> str:
    match = _PREFIX.match(expression)
    return expression[match.end() :] if match else expression


def _of_file(expressions: str | list[str], number: int) -> list[str]:
    return [_strip(e) for e in _as_list(expressions) if _file_of(e) == number]


def _every_expression(request: BatchIngestRequest) -> list[str]:
    mapped = [e for expressions in request.field_map.values() for e in _as_list(expressions)]
    return mapped + list(request.ingest_fields)
