"""README.md's path from install to a searched index to the dashboard, run as written on the local runtime.

The commands are read from README.md itself (tests/readme_commands.py), so a README command that stops
working, or a new one, fails here. Its placeholders are filled in: `data.jsonl` is twenty lines of the sample
with ids of this run (so the upload is new content and starts a new job), and `<job-id>` is that job.
`osbatch up` finds the runtime the suite already runs; `make down` is left to the end of the run (stopping
the node here would pull it from under the next module).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from cli.main import main
from cli.target import local_target
from local.runtime import LocalRuntime
from osbatch.models import JobStateName, job_id_for
from tests.helpers import eventually
from tests.readme_commands import DATA_FILE, JOB_ID, ROOT, How, commands_covered_by

pytestmark = pytest.mark.integration

SAMPLE = ROOT / "samples" / "python-docs" / "part-1.jsonl"
RECORDS = 20


def readme_data(path: Path) -> bytes:
    """Twenty sample records under ids of this run: new content, so its upload starts a job of its own."""
    run = uuid.uuid4().hex[:8]
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:RECORDS]
    records = [{**json.loads(line), "_id": f"readme-{run}-{number}"} for number, line in enumerate(lines)]
    body = "".join(json.dumps(record) + "\n" for record in records).encode()
    path.write_bytes(body)
    return body


def test_the_readme_commands_run_as_written(
    runtime: LocalRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the local runtime, and the README's data.jsonl in the working directory
    monkeypatch.chdir(tmp_path)
    body = readme_data(tmp_path / DATA_FILE)
    commands = commands_covered_by(How.RUNTIME)
    assert [command.argv[1] for command in commands][:3] == ["up", "deploy", "submit"]
    job_id = ""
    # When each README command that needs the runtime runs, in the README's order
    for command in commands:
        argv = [job_id if word == JOB_ID else word for word in command.argv[1:]]
        if argv[0] == "dashboard":
            # Then the dashboard shows data in every widget (exit 0), once the services' sampled metrics
            # (Step Functions' execution time, say) have caught up with the job
            def rendered(argv: list[str] = argv) -> bool:
                code = main(argv)
                capsys.readouterr()
                return code == 0

            eventually(rendered, timeout=180, interval=5, what=f"README.md:{command.line}: {command.text}")
            continue
        code = main(argv)
        out, err = capsys.readouterr()
        # Then each other command succeeds
        assert code == 0, f"README.md:{command.line}: {command.text} exited {code}\n{out}\n{err}"
        if argv[0] == "deploy":
            target = local_target()
            assert target is not None
            bucket = target.output("InputBucketName")
            # S3's ETag of a single PUT is the MD5 of its body, and the job id is derived from it
            job_id = job_id_for(
                "python-docs", bucket, f"input/python-docs/{DATA_FILE}", hashlib.md5(body).hexdigest()
            )
        if argv[0] == "search":
            assert "1. [" in out  # hits, ranked
    # And the upload's job indexed every record, and the report and dashboard pages were written
    target = local_target()
    assert target is not None
    job = target.jobs.get(job_id)
    assert job is not None and job["state"] == JobStateName.COMPLETED.value
    assert int(job["indexed"]) == RECORDS
    assert {"job.html", "dashboard.html"} <= {path.name for path in tmp_path.iterdir()}
