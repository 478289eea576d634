"""The blueprint's path-style SageMaker calls become moto's JSON-protocol requests (local emulator)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from local.emulators.sagemaker_paths import with_sagemaker_paths


def seen_by_moto(environ: dict[str, Any]) -> dict[str, Any]:
    received: dict[str, Any] = {}

    def moto(env: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        received.update(env)
        return [b""]

    list(with_sagemaker_paths(moto)(environ, lambda *_: None))
    return received


def test_a_get_with_a_body_to_describe_is_a_json_protocol_post() -> None:
    # Given the status call AWS's SageMaker batch connector blueprint makes (a GET with a body, the operation
    # in the path)
    environ = {
        "PATH_INFO": "/sagemaker/DescribeTransformJob",
        "REQUEST_METHOD": "GET",
        "CONTENT_TYPE": "application/json",
    }
    # Then moto sees POST / with the operation as X-Amz-Target, in the JSON protocol
    env = seen_by_moto(environ)
    assert (env["PATH_INFO"], env["REQUEST_METHOD"]) == ("/", "POST")
    assert env["HTTP_X_AMZ_TARGET"] == "SageMaker.DescribeTransformJob"
    assert env["CONTENT_TYPE"] == "application/x-amz-json-1.1"


def test_other_paths_and_operations_pass_untouched() -> None:
    for path in ("/", "/sagemaker/DeleteModel", "/bucket/sagemaker/CreateTransformJob"):
        environ = {"PATH_INFO": path, "REQUEST_METHOD": "PUT"}
        assert seen_by_moto(dict(environ)) == environ
