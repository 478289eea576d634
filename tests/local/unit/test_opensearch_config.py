"""opensearch.yml and jvm.options as the local node gets them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from local.opensearch.config import node_settings, render_jvm_options, render_opensearch_yml

DATA = Path("/state/opensearch/data")
LOGS = Path("/state/logs/opensearch")

DISTRIBUTION_JVM_OPTIONS = """\
## JVM configuration
-Xms1g
-Xmx1g
11-:-XX:+UseG1GC
-XX:HeapDumpPath=data
-XX:ErrorFile=logs/hs_err_pid%p.log
9-:-Xlog:gc*,gc+age=trace,safepoint:file=logs/gc.log:utctime,pid,tags:filecount=32,filesize=64m
20-:--add-modules=jdk.incubator.vector
21-:-javaagent:agent/opensearch-agent.jar
"""


def test_yml_round_trips_every_setting_including_the_regexes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the node's settings on a machine whose node-facing address is 192.0.2.7
    monkeypatch.setenv("OSBATCH_NODE_FACING_HOST", "192.0.2.7")
    settings = node_settings(9200, DATA, LOGS)

    # When they are rendered and read back as YAML
    parsed = yaml.safe_load(render_opensearch_yml(settings))

    # Then every value survives, backslashes in the endpoint regexes included
    assert parsed == settings
    assert parsed["plugins.ml_commons.trusted_connector_endpoints_regex"] == [
        r"^http://127\.0\.0\.1.*",
        r"^http://localhost.*",
        r"^http://192\.0\.2\.7:.*",  # the AWS emulator, for the ml-commons backend's batch connector
    ]


def test_settings_make_a_loopback_single_node_that_ml_commons_serves_on() -> None:
    # Given a node on port 9250
    settings = node_settings(9250, DATA, LOGS)

    # Then it binds loopback only, runs alone, keeps its state under the given folders
    assert settings["network.host"] == "127.0.0.1"
    assert settings["http.port"] == 9250
    assert settings["discovery.type"] == "single-node"
    assert (settings["path.data"], settings["path.logs"]) == (str(DATA), str(LOGS))
    # And a full disk cannot turn its indices read-only, and ML Commons accepts local connectors and work
    assert settings["cluster.routing.allocation.disk.threshold_enabled"] is False
    assert settings["plugins.ml_commons.connector.private_ip_enabled"] is True
    assert settings["plugins.ml_commons.only_run_on_ml_node"] is False
    assert settings["plugins.ml_commons.native_memory_threshold"] == 100


def test_jvm_options_take_our_heap_and_absolute_paths() -> None:
    # Given the distribution's jvm.options and a runtime that has the vector module
    modules = frozenset({"java.base", "jdk.incubator.vector"})

    # When they are rendered with a 2g heap
    lines = render_jvm_options(
        DISTRIBUTION_JVM_OPTIONS, heap="2g", logs_dir=LOGS, data_dir=DATA, modules=modules
    ).splitlines()

    # Then the heap is ours alone, and nothing points into the shared install any more
    assert [line for line in lines if line.startswith(("-Xms", "-Xmx"))] == ["-Xms2g", "-Xmx2g"]
    assert f"-XX:HeapDumpPath={DATA}" in lines
    assert f"-XX:ErrorFile={LOGS}/hs_err_pid%p.log" in lines
    assert any(f"file={LOGS}/gc.log:" in line for line in lines)
    assert "20-:--add-modules=jdk.incubator.vector" in lines
    # And the agent path, resolved by the launcher against the install, is kept as is
    assert "21-:-javaagent:agent/opensearch-agent.jar" in lines


def test_jvm_options_drop_modules_the_runtime_lacks() -> None:
    # Given a trimmed runtime without jdk.incubator.vector, which the JVM would refuse to start on
    modules = frozenset({"java.base"})

    # When the options are rendered
    text = render_jvm_options(
        DISTRIBUTION_JVM_OPTIONS, heap="1g", logs_dir=LOGS, data_dir=DATA, modules=modules
    )

    # Then the --add-modules line is gone and the rest stays
    assert "--add-modules" not in text
    assert "11-:-XX:+UseG1GC" in text.splitlines()


@pytest.mark.parametrize("heap", ["1", "lots", "1gb", "-1g"])
def test_a_heap_the_jvm_would_not_accept_is_refused(heap: str) -> None:
    # When an invalid heap is rendered, Then the error shows the value
    with pytest.raises(ValueError, match=f"not {heap!r}"):
        render_jvm_options(
            DISTRIBUTION_JVM_OPTIONS, heap=heap, logs_dir=LOGS, data_dir=DATA, modules=frozenset()
        )


def test_a_node_started_with_extra_settings_writes_them_and_one_without_does_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a distribution's config folder, and the state in a scratch home
    from local.opensearch.java import JavaRuntime
    from local.opensearch.node import OpenSearchNode

    monkeypatch.setenv("OSBATCH_HOME", str(tmp_path / "home"))
    home = tmp_path / "dist"
    (home / "config").mkdir(parents=True)
    (home / "config" / "jvm.options").write_text(DISTRIBUTION_JVM_OPTIONS)
    java = JavaRuntime(tmp_path, 21, frozenset({"jdk.incubator.vector"}))
    tiny = {"thread_pool.write.size": 1, "thread_pool.write.queue_size": 1}

    # When a node is configured with a tiny write pool (the reliability scenarios), then without it
    with_tiny = yaml.safe_load(
        (OpenSearchNode(9200, extra_settings=tiny)._write_config(home, java) / "opensearch.yml").read_text()
    )
    plain = yaml.safe_load((OpenSearchNode(9200)._write_config(home, java) / "opensearch.yml").read_text())

    # Then the first has the settings on top of the node's own, and the second is back to the defaults
    assert with_tiny["thread_pool.write.queue_size"] == 1 and with_tiny["thread_pool.write.size"] == 1
    assert with_tiny["cluster.name"] == plain["cluster.name"]
    assert not {key for key in plain if key.startswith("thread_pool.")}
