"""The local AWS emulator: one moto server on 127.0.0.1, port 4599 by default.

    python -m local.aws.server --port 4599 [--time-scale 0.01]

boto3 and `aws --endpoint-url http://127.0.0.1:4599` work against it (any credentials). On top of moto:
- Step Functions really executes state machines (moto's `execute_state_machine` config);
- CloudFormation deploys `cdk synth` templates (moto's own, with the gaps in patches/cloudformation.py);
- every Lambda invocation runs the function's real handler in a sandbox process (local.aws.sandbox),
  with the function's environment, timeout, memory limit and concurrency, logging to CloudWatch Logs;
- SQS event source mappings are polled like Lambda does, honouring partial batch responses;
- S3 sends real-shaped `Object Created` events to the default EventBridge bus, and rules deliver to
  SQS, Lambda, Step Functions and SNS targets;
- Wait states and Retry intervals take `--time-scale` times as long (the definitions are untouched);
- SageMaker's path-style calls of ML Commons' batch connector are served (local/emulators/sagemaker_paths.py).
- Bedrock's real-time InvokeModel answers for the embedding models (local/emulators/bedrock_runtime.py).
See local/aws/patches/ for exactly what is patched and why. GET /_osbatch/health answers when ready.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from local.aws import DEFAULT_PORT, HEALTH_PATH

LOG = logging.getLogger("local.aws.server")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.aws.server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="factor for Wait states and Retry intervals, e.g. 0.01"
    )
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    parser.add_argument(
        "--node-facing",
        action="store_true",
        help="also listen on this machine's node-facing address, for ML Commons (emulators/node_facing.py)",
    )
    args = parser.parse_args(argv)
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    return args


def configure(port: int, time_scale: float) -> str:
    """Prepare moto and this process; returns the endpoint URL handlers and emulators must use."""
    endpoint_url = f"http://127.0.0.1:{port}"
    # Step Functions' engine calls Lambda and S3 through boto3 at localhost:MOTO_PORT.
    os.environ["MOTO_PORT"] = str(port)
    # Lambda runs in UTC, and moto's Wait-until-Timestamp compares against naive local time.
    os.environ["TZ"] = "UTC"
    time.tzset()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

    from moto.core.config import default_user_config

    # The same switch as `mock_aws(config={"stepfunctions": {"execute_state_machine": True}})` and
    # POST /moto-api/config: StartExecution then runs the definition instead of faking an execution.
    default_user_config["stepfunctions"] = {"execute_state_machine": True}

    from local.aws import patches

    patches.install(endpoint_url=endpoint_url, time_scale=time_scale)
    return endpoint_url


def install_emulators(endpoint_url: str) -> None:
    try:
        emulators = importlib.import_module("local.emulators")
    except ImportError as error:
        if error.name not in ("local.emulators", "local"):
            raise
        LOG.info("note: local.emulators is not available; serving plain AWS emulation")
        return
    install = getattr(emulators, "install", None)
    if install is None:
        LOG.warning("local.emulators has no install(); serving plain AWS emulation")
        return
    # Transform jobs' models in container processes of their own, as SageMaker runs them.
    install(s3_endpoint_url=endpoint_url, model_workers=True)
    LOG.info("installed local.emulators")


def with_health(app: WsgiApp, info: dict[str, Any]) -> WsgiApp:
    body = json.dumps({"status": "ok", **info}).encode()

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return app(environ, start_response)

    return wrapped


def serve_node_facing(app: WsgiApp, port: int) -> None:
    """The same emulator on the node-facing address, answering connections from this machine only."""
    import threading

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    from local.emulators.node_facing import is_local, node_facing_host

    host = node_facing_host()
    if host is None:
        LOG.warning("no node-facing address: the ml-commons backend cannot run locally (node_facing.py)")
        return

    def this_machine_only(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not is_local(str(environ.get("REMOTE_ADDR", ""))):
            start_response("403 Forbidden", [("Content-Length", "0")])
            return [b""]
        return app(environ, start_response)

    server = make_server(host, port, this_machine_only, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, name="node-facing", daemon=True).start()
    LOG.info("AWS emulator also on %s:%s for ML Commons' batch calls", host, port)


def stop_sandboxes() -> None:
    from local.aws.patches.lambda_invoke import Sandboxes

    if Sandboxes.pools is not None:
        Sandboxes.pools.shutdown()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)  # handlers' clients would log every endpoint
    endpoint_url = configure(args.port, args.time_scale)
    install_emulators(endpoint_url)

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    atexit.register(stop_sandboxes)
    from local.emulators.bedrock_runtime import with_bedrock_runtime
    from local.emulators.faults import with_checkpoint_hold, with_fault_route
    from local.emulators.sagemaker_paths import with_sagemaker_paths
    from local.model import load_embedder

    moto_app = with_sagemaker_paths(DomainDispatcherApplication(create_backend_app))
    app = with_health(
        with_fault_route(with_checkpoint_hold(with_bedrock_runtime(moto_app, lambda: load_embedder(None)))),
        {"port": args.port, "time_scale": args.time_scale, "pid": os.getpid()},
    )
    LOG.info("AWS emulator on %s (time scale %s)", endpoint_url, args.time_scale)
    if args.node_facing:
        serve_node_facing(app, args.port)
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
