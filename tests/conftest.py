"""Shared test setup: AWS calls never leave the process unless a test starts the local runtime."""

from __future__ import annotations

import os

# Set before any boto3 client exists, so nothing can reach a real account by accident.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_SESSION_TOKEN", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "osbatch")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "osbatch-tests")

# CDK synthesizes in-process in the infra suite: its jsii kernel runs on the pinned Node, as app.py's does.
from infra.jsii_node import use_pinned_node

use_pinned_node()
