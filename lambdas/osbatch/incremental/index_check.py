"""What `osbatch plan --index` says about a pipeline's index before anything is paid for: how many of its
documents were embedded under another model, model parameters or chunking (each document carries its
config's fingerprint, contracts.CONFIG_FIELD), and how many carry none (written by something else). Every
record of those counts as changed at the next upload."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from osbatch.config import PipelineConfig
from osbatch.contracts import CONFIG_FIELD
from osbatch.incremental.fingerprint import INCREMENTAL_OFF, config_fingerprint


class IndexCheck(BaseModel):
    index: str
    documents: int
    other_config: int  # embedded under another model, its parameters or chunking
    without_fingerprint: int  # written by something other than osbatch (or before fingerprints)
    note: str


def check_index(client: Any, config: PipelineConfig) -> IndexCheck:
    index, current = config.sink.index, config_fingerprint(config)
    total = int(client.count(index=index, body={"query": {"match_all": {}}})["count"])
    other = {
        "bool": {
            "filter": [{"exists": {"field": CONFIG_FIELD}}],
            "must_not": [{"term": {CONFIG_FIELD: current}}],
        }
    }
    missing = {"bool": {"must_not": [{"exists": {"field": CONFIG_FIELD}}]}}
    other_config = int(client.count(index=index, body={"query": other})["count"])
    without = int(client.count(index=index, body={"query": missing})["count"])
    if other_config:
        note = (
            f"{other_config:,} of the {total:,} documents in {index} were embedded under another model, "
            "model parameters or chunking: their records count as changed and are embedded again"
        )
    elif without:
        note = (
            f"{without:,} of the {total:,} documents in {index} carry no osbatch fingerprint: their records "
            "count as changed"
        )
    else:
        note = (
            f"all {total:,} documents in {index} were embedded under this config: unchanged records skip "
            "the model"
        )
    return IndexCheck(
        index=index, documents=total, other_config=other_config, without_fingerprint=without, note=note
    )


def incremental_summary(config: PipelineConfig) -> dict[str, Any]:
    if not config.source.incremental:
        return {"enabled": False, "why_off": INCREMENTAL_OFF}
    return {
        "enabled": True,
        "config_fingerprint": config_fingerprint(config),
        "note": "records whose text is unchanged since osbatch indexed them under this model and chunking "
        "skip the model; this plan does not read the index, so it counts every record as sent "
        "(--index compares the index's documents with this config)",
    }
