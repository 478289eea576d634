"""A backend whose answers are scripted; the real SageMaker adapter is tested on its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from osbatch.backends.base import BackendStatus, InputLimits, JobLimits, OutputLine, OutputObject
from osbatch.models import RemoteJob


@dataclass
class ScriptedBackend:
    """Status answers are popped from `statuses` (an exception is raised); outputs are as given. Each
    submit first raises the next of `submit_errors`, if any (a throttling service)."""

    statuses: list[Any] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    limits: InputLimits = field(default_factory=lambda: InputLimits(10, 10))
    job_limits: JobLimits = field(default_factory=lambda: JobLimits(1000, 10**9))
    output_objects: list[OutputObject] = field(default_factory=list)
    joins_source: bool = False
    result_key: str = "SageMakerOutput"
    submit_errors: list[Exception] = field(default_factory=list)

    def input_line(self, record: dict[str, Any], line: int, text: str) -> dict[str, Any]:
        return record

    def submit(self, name: str, input_uri: str, output_uri: str) -> RemoteJob:
        if self.submit_errors:
            raise self.submit_errors.pop(0)
        self.submitted.append(name)
        return RemoteJob(id=name, arn=f"arn:{name}", output_uri=output_uri)

    def status(self, remote: RemoteJob) -> BackendStatus:
        answer = self.statuses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def cancel(self, remote: RemoteJob) -> None:
        self.cancelled.append(remote.id)

    def outputs(self, remote: RemoteJob) -> list[OutputObject]:
        # The objects under this remote job's output place.
        return [output for output in self.output_objects if remote.output_uri.endswith(_folder(output.key))]

    def parse_output(self, line: dict[str, Any]) -> OutputLine:
        return OutputLine(line.get("line"), result=line.get("out"), error=line.get("error"))


def _folder(key: str) -> str:
    return key.rsplit("/", 1)[0] + "/"
