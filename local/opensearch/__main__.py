"""`python -m local.opensearch {install,start,stop,status}`: the node on its own, for debugging."""

from __future__ import annotations

import argparse
import sys

from local.opensearch.errors import SetupError
from local.opensearch.node import OpenSearchNode
from local.process import StartupError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.opensearch", description=__doc__)
    parser.add_argument("command", choices=["install", "start", "stop", "status"])
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--heap", default="1g", help="JVM heap, e.g. 1g or 1536m")
    parser.add_argument("--timeout", type=float, default=240, help="seconds to wait for readiness")
    args = parser.parse_args(argv)
    node = OpenSearchNode(port=args.port, heap=args.heap)
    try:
        if args.command == "install":
            print(node.install())
        elif args.command == "start":
            if not node.start(timeout=args.timeout):
                print(f"already running at {node.url}")
        elif args.command == "stop":
            print("stopped" if node.stop() else "was not running")
        else:
            print(node.status().describe())
    except (SetupError, StartupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
