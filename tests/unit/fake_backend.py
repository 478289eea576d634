"""A backend whose answers are scripted; the real SageMaker adapter is tested on its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from osbatch.backends.base import BackendStatus, InputLimits, OutputLine, OutputObject
from osbatch.models import RemoteJob


@dataclass
class ScriptedBackend:
    """Status answers are popped from `statuses` (an exception is raised); outputs are as given."""

    statuses: list[Any] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    limits: InputLimits = field(default_factory=lambda: InputLimits(10, 10))
    output_objects: list[OutputObject] = field(default_factory=list)
    joins_source: bool = False
    result_key: str = "SageMakerOutput"

    def input_line(self, record: dict[str, Any], line: int, text: str) -> dict[str, Any]:
        return record

    def submit(self, job_id: str, input_uri: str, output_uri: str) -> RemoteJob:
        self.submitted.append(job_id)
        return RemoteJob(id=f"osb-{job_id}", arn="arn:job", output_uri=output_uri)

    def status(self, remote: RemoteJob) -> BackendStatus:
        answer = self.statuses.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def cancel(self, remote: RemoteJob) -> None:
        self.cancelled.append(remote.id)

    def outputs(self, remote: RemoteJob) -> list[OutputObject]:
        return list(self.output_objects)

    def parse_output(self, line: dict[str, Any]) -> OutputLine:
        return OutputLine(line.get("line"), result=line.get("out"), error=line.get("error"))
