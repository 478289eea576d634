"""The dependency layer's lock: hashed, current with lambda.txt, and without what nothing imports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.unit.helpers import REPO

LOCK = REPO / "requirements" / "lambda.lock"
TOP_LEVEL = REPO / "requirements" / "lambda.txt"
# Left out by `make lock` (Makefile LOCK_EXCLUDED): opensearch-py's gRPC client, never imported here.
EXCLUDED = ("opensearch-protobufs", "grpcio", "protobuf", "huggingface-hub", "hf-xet", "httpx2", "fsspec")
EXCLUDED_MODULES = ("grpc", "google.protobuf", "opensearch.protobufs", "huggingface_hub", "hf_xet", "httpx2")


def _entries(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a pip requirements file with hashes."""
    joined = text.replace("\\\n", " ")
    entries = {}
    for line in joined.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)(.*)$", line.split("#")[0].strip())
        if match:
            name = re.sub(r"[-_.]+", "-", match[1]).lower()
            entries[name] = (match[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", match[3]))
    return entries


def test_every_locked_distribution_is_pinned_with_hashes() -> None:
    # Given the lock the layer installs with --require-hashes --no-deps
    entries = _entries(LOCK.read_text())
    # Then every entry pins one version and carries the sha256 of its files
    assert len(entries) > 10
    assert [name for name, (_, hashes) in entries.items() if not hashes] == []


def test_the_lock_is_current_with_the_top_level_requirements() -> None:
    # Given the pins of lambda.txt (what the dev environment installs too)
    wanted = {
        re.sub(r"\[.*\]", "", name): version for name, (version, _) in _entries(TOP_LEVEL.read_text()).items()
    }
    locked = _entries(LOCK.read_text())
    # Then the lock holds each at the same version: run `make lock` after editing lambda.txt
    assert {name: locked.get(name, ("missing", []))[0] for name in wanted} == wanted


def test_the_lock_leaves_out_the_unused_grpc_client() -> None:
    # Given the lock
    locked = _entries(LOCK.read_text())
    # Then opensearch-py's gRPC dependencies (about 18 MB unzipped) and tokenizers' Hub client are not in
    # the layer
    assert not set(EXCLUDED) & set(locked)


def test_the_lambda_code_imports_without_the_left_out_packages() -> None:
    # Given an interpreter in which importing grpc or protobuf fails, as it would in the layer
    blocker = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        f"    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.startswith({EXCLUDED_MODULES!r}):\n"
        "            raise ImportError(f'{name} is not in the layer')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import importlib, pkgutil, osbatch\n"
        "names = [m.name for m in pkgutil.walk_packages(osbatch.__path__, 'osbatch.')]\n"
        "for name in names: importlib.import_module(name)\n"
        # Chunking's tokenizer loads tokenizer.json from a file; from_pretrained alone needs huggingface_hub.
        "from osbatch.chunking.tokens import TokenizerJsonCounter\n"
        "assert TokenizerJsonCounter.__init__\n"
        "import tokenizers\n"
        "tokenizers.Tokenizer(tokenizers.models.WordPiece({'[UNK]': 0}, unk_token='[UNK]'))\n"
        "print(len(names))\n"
    )
    # When every module of the Lambda package is imported
    result = subprocess.run(
        [sys.executable, "-c", blocker],
        cwd=Path("/"),
        env={"PYTHONPATH": str(REPO / "lambdas"), "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        check=False,
    )
    # Then all of them import: nothing the functions run needs what the lock leaves out
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 30
