"""The code asset's files besides the source: the deployed configs and, when a pipeline needs it, MiniLM's
tokenizer.json (staged by copying, without a synth, so these run in a moment)."""

from __future__ import annotations

from pathlib import Path

from infra.code import minilm_tokenizer_json, stage_code
from osbatch.config import MINILM_TOKENIZER_FILE
from tests.infra.helpers import pipeline

CHUNKING = {"chunking": {"algorithms": [{"fixed_token_length": {"token_limit": 200}}]}}
# A chunking pipeline indexes its passages in a nested knn_vector field.
NESTED = {
    "mapping": {
        "mappings": {
            "properties": {
                "passages": {
                    "type": "nested",
                    "properties": {"embedding": {"type": "knn_vector", "dimension": 384}},
                }
            }
        }
    },
    "field_map": {"_id": "$._id"},
}


def test_a_pipeline_chunking_by_minilm_tokens_ships_the_tokenizer(tmp_path: Path) -> None:
    # Given a SageMaker pipeline that chunks (its tokens are counted with all-MiniLM-L6-v2's own tokenizer)
    chunking = pipeline(source=CHUNKING, sink=NESTED)

    # When the code is staged
    code = stage_code(tmp_path / "code", [chunking])

    # Then the model's tokenizer.json sits in the package, byte for byte
    shipped = code / "osbatch" / MINILM_TOKENIZER_FILE
    assert shipped.read_bytes() == minilm_tokenizer_json().read_bytes()


def test_pipelines_that_do_not_count_minilm_tokens_ship_no_tokenizer(tmp_path: Path) -> None:
    # Given a pipeline that does not chunk, and one that chunks by the UTF-8 byte estimate
    plain = pipeline()
    by_bytes = pipeline(
        name="bytes",
        source={"prefix": "input/b/", "chunking": {**CHUNKING["chunking"], "tokenizer": "utf8-bytes"}},
        sink=NESTED,
    )

    # When the code is staged
    code = stage_code(tmp_path / "code", [plain, by_bytes])

    # Then no tokenizer is shipped: nothing would read it
    assert not (code / "osbatch" / MINILM_TOKENIZER_FILE).exists()
