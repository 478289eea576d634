"""When the node stops answering, the rest of a chunk does not wait out every request's retries in turn.

Each bulk request retries connection errors with backoff, about two minutes at sink.bulk.max_retries 10:
longer than a node takes to restart (make reliability, scenario c). But a node that stays down made every
request of a chunk spend that budget, a few at a time: 1,000 records in 5 chunks of 29 requests were still
ingesting 10 minutes after the node stopped, and would have gone on for half an hour, or into the function's
timeout (scenario h, before this). A job could not end while its node was down.

So once a request has spent its retries without a single answer from the node (every attempt refused or
reset before a response), the writer takes the node as gone: each later request of the chunk gets one
attempt, and if the node does not answer that either, its documents fail with the reason at once (they are
dead-lettered, and `osbatch replay` indexes them later). Any answer, a response or an HTTP error, takes the
node as back. A timeout is not "no answer": a node too slow to answer in time may be applying the request,
and keeps the full retries. The state lives in one writer (one chunk), so the next chunk tries in full.

A small circuit breaker. pybreaker and the like refuse calls while open and reopen on a timer; what is
needed here is fewer retries, decided per request, and no clock: a few lines.
"""

from __future__ import annotations

from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import ConnectionTimeout, TransportError

NOT_RETRIED = "not retried: the node answered none of the attempts of an earlier request of this chunk"


def unanswered(error: TransportError) -> bool:
    """The node gave no answer: the connection was refused or reset (a timeout is a slow node)."""
    return isinstance(error, OpenSearchConnectionError) and not isinstance(error, ConnectionTimeout)


class NodeGone:
    """Whether the writer's node is taken as gone. Set and cleared from the writer's request threads; a
    bool's assignment is atomic, and a request that reads a stale value only retries more or less."""

    def __init__(self) -> None:
        self._gone = False

    def attempts(self, configured: int) -> int:
        """How many attempts the next request gets."""
        return 1 if self._gone else configured

    def saw(self, error: TransportError | None) -> bool:
        """An attempt ended with this error (None: a response); True if the node answered it, which takes
        the node as back."""
        if error is not None and unanswered(error):
            return False
        self._gone = False
        return True

    def spent(self, answered: bool) -> None:
        """A request's attempts are spent; answered: the node answered at least one of them."""
        if not answered:
            self._gone = True
