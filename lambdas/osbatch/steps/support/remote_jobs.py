"""One job's state from the states of its remote jobs.

While any remote job runs, the job is RUNNING (CANCELLING once any is being stopped), and `ready` counts
the remote jobs that finished with output not yet ingested. Once all have ended:
- all completed: COMPLETED, or PARTIALLY_COMPLETED when any completed partially;
- some completed and the others FAILED or EXPIRED: PARTIALLY_COMPLETED: what completed is ingested, the
  failed ones' records are dead-lettered at file level by Finalize (stage inference, the remote error);
- none completed, or any was cancelled or unreachable: the job ends in that state (FailJob), as one
  remote job's failure always did.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from osbatch.models import JobStateName, JobStatus, RemoteJob

# A failed part makes the job partial only while other parts completed; these end it however many did.
ENDS_THE_JOB = (JobStateName.CANCELLED, JobStateName.UNREACHABLE)
# Which state a job ends in when none of its remote jobs completed: the first of these any of them has.
FAILURE_ORDER = (JobStateName.CANCELLED, JobStateName.FAILED, JobStateName.EXPIRED, JobStateName.UNREACHABLE)


def failed_remotes(remotes: Sequence[RemoteJob]) -> list[RemoteJob]:
    return [remote for remote in remotes if remote.state.terminal and not remote.succeeded]


def overall_status(remotes: Sequence[RemoteJob], progress: Mapping[str, Any]) -> JobStatus:
    statuses = sorted({str(p.get("remote_status")) for p in progress.values() if p.get("remote_status")})
    summary: dict[str, Any] = {"remote_status": ",".join(statuses), "remote_jobs": dict(progress)}
    ready = sum(remote.succeeded and not remote.ingested for remote in remotes)
    if not all(remote.state.terminal for remote in remotes):
        cancelling = any(remote.state is JobStateName.CANCELLING for remote in remotes)
        state = JobStateName.CANCELLING if cancelling else JobStateName.RUNNING
        return JobStatus(state=state, progress=summary, ready=ready)
    failed = failed_remotes(remotes)
    succeeded = len(remotes) - len(failed)
    if not succeeded or any(remote.state in ENDS_THE_JOB for remote in failed):
        state = next(state for state in FAILURE_ORDER if any(r.state is state for r in failed))
        worst = [remote for remote in failed if remote.state is state]
        return JobStatus(state=state, reason=_reasons(worst, len(remotes)), progress=summary, ready=ready)
    partial = [remote for remote in remotes if remote.state is JobStateName.PARTIALLY_COMPLETED]
    if not failed and not partial:
        return JobStatus(state=JobStateName.COMPLETED, progress=summary, ready=ready)
    return JobStatus(
        state=JobStateName.PARTIALLY_COMPLETED,
        reason=_reasons([*failed, *partial], len(remotes)),
        progress=summary,
        ready=ready,
    )


def _reasons(remotes: Sequence[RemoteJob], total: int) -> str:
    """The backends' own reasons; with several remote jobs, each names its job."""
    if total == 1:
        return remotes[0].reason or f"the remote job ended {remotes[0].state.value}"
    return "; ".join(
        f"remote job {remote.index + 1} of {total} ({remote.id}) {remote.state.value}: "
        f"{remote.reason or 'no reason given'}"
        for remote in sorted(remotes, key=lambda remote: remote.index)
    )
