"""The fingerprint of a record's embedded input: what decides whether its vectors can be kept.

Two records with the same fingerprint would be sent to the same model with the same parameters as the same
passages, so their output would be the same: the text, the chunking spec (deterministic: the same text
and spec give the same passages, osbatch.chunking) and its tokenizer, the backend and every setting of it
that reaches the model. Settings that only decide where or how fast the job runs (instances, quotas,
timeouts, file sizes, roles) are left out, so scaling a pipeline up re-embeds nothing; anything else
changed makes every record "changed", which is the safe side.

blake2b (hashlib, no dependency): 128 bits, so two different inputs share a fingerprint with probability
about n^2 / 2^129, nil for any corpus.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from osbatch.config import PipelineConfig

DIGEST_BYTES = 16
# What the plan and the report say when a pipeline turns incremental re-embedding off.
INCREMENTAL_OFF = "source.incremental is false in the pipeline's config"
# Settings of the backends' sections that do not reach the model (they place, size or pace the job).
NOT_EMBEDDING_SETTINGS = frozenset(
    {
        "TransformResources",
        "MaxConcurrentTransforms",
        "MaxPayloadInMB",
        "BatchStrategy",
        "TransformOutput",
        "role_arn",
        "timeout_hours",
        "quotas",
        "api_base",
        "api_key_secret",
        "max_requests_per_file",
        "max_file_bytes",
        "region",
    }
)


def config_fingerprint(config: PipelineConfig) -> str:
    """What a config contributes to every record's fingerprint; it changes when the model, its parameters,
    the chunking or the chunking tokenizer do."""
    inference = config.inference
    settings = {
        name: _embedding_settings(section.model_dump(mode="json"))
        for name in ("sagemaker", "bedrock", "openai", "ml_commons")
        if (section := getattr(inference, name)) is not None
    }
    chunking = config.source.chunking
    spec = {
        "backend": inference.backend.value,
        "settings": settings,
        "text_path": config.source.text_path,
        "chunking": chunking.model_dump(mode="json") if chunking is not None else None,
        "tokenizer": config.chunking_tokenizer.value if config.chunking_tokenizer is not None else None,
    }
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=DIGEST_BYTES).hexdigest()


def record_fingerprint(config_print: str, text: str) -> str:
    """The fingerprint stored with a document: its text under its config's fingerprint."""
    digest = hashlib.blake2b(config_print.encode(), digest_size=DIGEST_BYTES)
    digest.update(text.encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()


def _embedding_settings(section: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _embedding_settings(value) if isinstance(value, dict) else value
        for key, value in section.items()
        if key not in NOT_EMBEDDING_SETTINGS
    }
