"""CDK entry point: load the pipeline configs, build the stack, and let cdk-nag gate the synth.

Context: `pipelines` (a glob, default pipelines/*.yaml), `stack_name` (default osbatch), and who the alarms
reach: `alarm_emails` and `alarm_topic_arns` (comma-separated; infra/notify.py), `tags` (a JSON object put
on every resource; infra/tags.py), `reserved_concurrency` (false drops the functions' reservations) and
`batch_ingest_buckets` (comma-separated: the buckets `osbatch batch-ingest --stack` requests may read, each
`bucket` or `bucket:account` of its owner) and `sagemaker_log_group` (`existing` when the account already has
/aws/sagemaker/TransformJobs, which the stack otherwise creates; infra/inference.py).
The local runtime (`osbatch deploy --local`) adds what must differ there, and nothing else differs:
`local_opensearch_endpoint` (the functions' OPENSEARCH_ENDPOINT: the local node) and `local_knn_engine`
(`lucene`: the local node's k-NN plugin has no native engines, see local/opensearch/mapping.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
# The config model lives in the Lambda asset so synth and the functions validate configs the same way.
sys.path.insert(0, str(ROOT / "lambdas"))
sys.path.insert(0, str(ROOT))

CONFIG_ERROR_EXIT = 2


def main() -> int:
    from infra.jsii_node import use_pinned_node

    use_pinned_node()  # before aws_cdk starts the jsii kernel
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    from infra.batch_ingest import BATCH_INGEST_BUCKETS_CONTEXT, buckets_from_context
    from infra.functions import RESERVED_CONCURRENCY_CONTEXT
    from infra.notify import EMAILS_CONTEXT, TOPICS_CONTEXT, AlarmTargets
    from infra.pipelines import DEFAULT_PATTERN, load_pipelines
    from infra.stack import LOCAL_OPENSEARCH_ENDPOINT, OsbatchStack
    from infra.tags import TAGS_CONTEXT, tags_from_context
    from osbatch.config import ConfigError

    # cdk.json's feature flags as defaults, so running app.py without the CLI (the local runtime, tests)
    # builds the same template; context from the CLI or CDK_CONTEXT_JSON still wins.
    flags = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    app = cdk.App(context=flags)
    pattern = app.node.try_get_context("pipelines") or DEFAULT_PATTERN
    stack_name = app.node.try_get_context("stack_name") or "osbatch"
    try:
        pipelines = load_pipelines(pattern, ROOT)
        if app.node.try_get_context("local_knn_engine"):
            pipelines = with_local_knn_engine(pipelines, app.node.try_get_context("local_knn_engine"))
        if app.node.try_get_context("local_openai_base"):
            from local.deploy import with_local_openai

            pipelines = with_local_openai(pipelines, app.node.try_get_context("local_openai_base"))
        targets = AlarmTargets.from_context(
            app.node.try_get_context(EMAILS_CONTEXT), app.node.try_get_context(TOPICS_CONTEXT)
        )
        reserve = app.node.try_get_context(RESERVED_CONCURRENCY_CONTEXT)
        OsbatchStack(
            app,
            stack_name,
            pipelines=pipelines,
            opensearch_endpoint=app.node.try_get_context(LOCAL_OPENSEARCH_ENDPOINT),
            alarm_targets=targets,
            resource_tags=tags_from_context(app.node.try_get_context(TAGS_CONTEXT)),
            # `-c reserved_concurrency=false` arrives as the string "false"
            reserve_concurrency=str(reserve).lower() != "false",
            batch_ingest_buckets=buckets_from_context(app.node.try_get_context(BATCH_INGEST_BUCKETS_CONTEXT)),
        )
    except ConfigError as error:
        # A config mistake is the user's to fix: say what and where, without a traceback.
        print(f"osbatch: cannot synthesize:\n{error}", file=sys.stderr)
        return CONFIG_ERROR_EXIT
    # cdk-nag 3 runs as a policy-validation plugin: any unacknowledged finding fails the synth.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    try:
        app.synth()
    except RuntimeError as error:
        if "ValidationFailed" not in str(error):
            raise
        # CDK has already printed the report; the traceback would only bury it.
        print(f"osbatch: {error}", file=sys.stderr)
        return 1
    return 0


def with_local_knn_engine(pipelines: list[Any], engine: str) -> list[Any]:
    """The pipelines with every k-NN mapping on `engine`, each change printed (it is a local-only change)."""
    from local.opensearch.mapping import LOCAL_ENGINE, localize_mapping

    if engine != LOCAL_ENGINE:
        raise ValueError(f"context local_knn_engine: only {LOCAL_ENGINE!r} is supported, not {engine!r}")
    localized = []
    for config in pipelines:
        mapping, notes = localize_mapping(config.sink.mapping, index=config.sink.index)
        for note in notes:
            print(f"note: pipeline {config.name}: {note}", file=sys.stderr)
        localized.append(
            config.model_copy(update={"sink": config.sink.model_copy(update={"mapping": mapping})})
        )
    return localized


if __name__ == "__main__":
    sys.exit(main())
