"""Split one record's text into passages, exactly, lazily and without losing a character.

Guarantees, for any text and any config:
- passages are contiguous or overlapping runs of the text: every character is in at least one passage,
  and each passage's (start, end) are exact character offsets into the text;
- after a `fixed_token_length` step, every passage counted on its own by the TokenCounter has at most
  `token_limit` tokens (the model reads passages alone, so that is the count that matters);
- memory stays flat in the length of the text: the text is tokenized a window at a time and passages are
  generated, never collected (a 50 MB record peaks well under 300 MB: bench/long_documents.py);
- text that cannot give a passage, or would give too many, raises a NotChunkable whose `reason` is the
  dead letter's: it says what to change.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from osbatch.chunking.spec import (
    DEFAULT_TOKEN_LIMIT,
    ChunkingConfig,
    Delimiter,
    FixedTokenLength,
    OnMaxChunkLimit,
)
from osbatch.chunking.tokens import Span, TokenCounter

# Text is tokenized this many characters at a time (a few thousand tokens), ended at a space where there
# is one so that no word is cut; what a window cut does to a count is caught by counting each passage alone.
WINDOW_CHARS = 16_384
# A token longer than this (a run with no spaces: WordPiece reads any word over 100 characters as one
# [UNK]) is cut into pieces this long, so that a passage stays bounded in characters too.
MAX_TOKEN_CHARS = 100
_NON_BLANK = re.compile(r"\S")

Step = Callable[[str, Iterator[Span]], Iterator[Span]]


@dataclass(frozen=True, slots=True)
class Passage:
    text: str
    start: int  # offset of text's first character in the record's text
    end: int  # one past its last


class NotChunkable(ValueError):
    """A record that gives no passage, or too many; `reason` is its dead letter's reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BlankText(NotChunkable):
    def __init__(self) -> None:
        super().__init__("the text is empty or only whitespace: there is nothing to embed")


class OnlyDelimiters(NotChunkable):
    def __init__(self, delimiters: list[str]) -> None:
        shown = ", ".join(repr(delimiter) for delimiter in delimiters)
        super().__init__(f"the text holds nothing but the chunking delimiter ({shown}) and whitespace")


class TooManyPassages(NotChunkable):
    def __init__(self, algorithm: str, limit: int) -> None:
        super().__init__(
            f"the text needs more than {algorithm}'s max_chunk_limit of {limit} passages; raise "
            f"source.chunking's max_chunk_limit, split the record, or set on_max_chunk_limit: "
            "append_to_last_chunk to put the rest in the last passage as text_chunking does"
        )
        self.limit = limit


class Chunker:
    """A pipeline's chunking config, bound to its token counter."""

    def __init__(self, config: ChunkingConfig, counter: TokenCounter) -> None:
        self._counter = counter
        self._overflow = config.on_max_chunk_limit
        self._delimiters = [step.delimiter.delimiter for step in config.algorithms if step.delimiter]
        self._steps: list[Step] = [self._step(step.algorithm) for step in config.algorithms]

    def token_limit(self, algorithm: FixedTokenLength) -> int:
        return algorithm.token_limit or min(DEFAULT_TOKEN_LIMIT, self._counter.max_tokens)

    def passages(self, text: str) -> Iterator[Passage]:
        """The passages of text, in order; raises NotChunkable (possibly after some passages)."""
        if not _NON_BLANK.search(text):
            raise BlankText()
        spans: Iterator[Span] = iter([(0, len(text))])
        for step in self._steps:
            spans = step(text, spans)
        produced = False
        for start, end in spans:
            produced = True
            yield Passage(text[start:end], start, end)
        if not produced:
            raise OnlyDelimiters(self._delimiters)

    def chunk(self, text: str) -> list[Passage] | NotChunkable:
        """All of a record's passages, or why it has none: what Prepare writes, or dead-letters."""
        try:
            return list(self.passages(text))
        except NotChunkable as refusal:
            return refusal

    def _step(self, algorithm: FixedTokenLength | Delimiter) -> Step:
        split: Callable[[str, int, int], Iterator[Span]]
        if isinstance(algorithm, Delimiter):
            name, split = "delimiter", partial(_split_on, delimiter=algorithm.delimiter)
        else:
            name = "fixed_token_length"
            split = partial(
                _fixed_tokens,
                limit=self.token_limit(algorithm),
                overlap_rate=algorithm.overlap_rate,
                counter=self._counter,
            )
        limit, overflow = algorithm.max_chunk_limit, self._overflow

        def step(text: str, pieces: Iterator[Span]) -> Iterator[Span]:
            spans = (span for start, end in pieces for span in split(text, start, end))
            return _at_most(spans, limit, name, len(text), overflow)

        return step


def _at_most(
    spans: Iterator[Span], limit: int, algorithm: str, text_end: int, overflow: OnMaxChunkLimit
) -> Iterator[Span]:
    for number, span in enumerate(spans, start=1):
        if number < limit:
            yield span
            continue
        # The limit-th passage: the last one, unless the text goes on.
        rest = next(spans, None)
        if rest is None:
            yield span
        elif overflow is OnMaxChunkLimit.APPEND_TO_LAST_CHUNK:
            yield span[0], text_end
        else:
            raise TooManyPassages(algorithm, limit)
        return


def _split_on(text: str, start: int, end: int, delimiter: str) -> Iterator[Span]:
    """Pieces of [start, end) each ending just after a delimiter, as text_chunking's delimiter algorithm cuts.

    A piece with nothing but the delimiter and whitespace is no passage of its own: it joins the piece before
    it (or, at the start, the one after), so that no character is dropped and no empty passage is embedded.
    """
    pending_start = start
    kept: Span | None = None
    position = start
    while position < end:
        found = text.find(delimiter, position, end)
        cut = end if found < 0 else found + len(delimiter)
        content_end = cut if found < 0 else found
        if _NON_BLANK.search(text, position, content_end):
            if kept is not None:
                yield kept
            kept = (pending_start, cut)
            pending_start = cut
        elif kept is not None:
            kept = (kept[0], cut)
            pending_start = cut
        position = cut
    if kept is not None:
        yield kept


def _token_spans(text: str, start: int, end: int, counter: TokenCounter) -> Iterator[Span]:
    """The tokens of [start, end), a window at a time: each has a start past the one before, none is long."""
    position = start
    last_start = -1
    while position < end:
        stop = min(position + WINDOW_CHARS, end)
        if stop < end:
            half = position + WINDOW_CHARS // 2
            space = max(text.rfind(" ", half, stop), text.rfind("\n", half, stop))
            stop = space + 1 if space > position else stop
        for token_start, token_end in counter.spans(text[position:stop]):
            first, last = position + token_start, position + token_end
            # Several tokens of one character (a byte-level tokenizer's pieces of it) are one cut point.
            if first <= last_start:
                continue
            for piece in range(first, max(last, first + 1), MAX_TOKEN_CHARS):
                last_start = piece
                yield piece, min(piece + MAX_TOKEN_CHARS, max(last, first + 1))
        position = stop


def _fixed_tokens(
    text: str, start: int, end: int, limit: int, overlap_rate: float, counter: TokenCounter
) -> Iterator[Span]:
    """Passages of at most `limit` tokens over [start, end), each starting `overlap_rate` of it before the
    previous one ends. A passage runs from its first token's start to the next passage's first token (its
    last passage to `end`), so the characters between tokens are never dropped."""
    tokens = _token_spans(text, start, end, counter)
    window: deque[Span] = deque()
    exhausted = False
    while True:
        while not exhausted and len(window) <= limit:
            token = next(tokens, None)
            if token is None:
                exhausted = True
            else:
                window.append(token)
        taken = min(limit, len(window))
        cut = window[taken][0] if len(window) > taken else end
        if taken and counter.count(text[start:cut]) > limit:
            taken = _most_tokens_within(text, start, window, taken, limit, counter)
            cut = window[taken][0] if taken else _most_chars_within(text, start, window, limit, counter)
        yield start, cut
        if cut >= end:
            return
        if taken == 0:
            # One token alone is over the limit: its rest starts the next passage, with no overlap.
            if len(window) > 1 and cut >= window[1][0]:
                window.popleft()
            else:
                window[0] = (cut, max(cut, window[0][1]))
            start = cut
            continue
        advance = max(1, taken - math.floor(taken * overlap_rate))
        for _ in range(advance):
            window.popleft()
        start = window[0][0] if window else cut


def _most_tokens_within(
    text: str, start: int, window: deque[Span], taken: int, limit: int, counter: TokenCounter
) -> int:
    """The most tokens of window, from start, that count within limit when counted alone (0 if not even one).

    Binary search between a prefix known to fit (lo) and one known not to (hi)."""
    lo, hi = 0, taken
    while hi - lo > 1:
        middle = (lo + hi) // 2
        if counter.count(text[start : window[middle][0]]) <= limit:
            lo = middle
        else:
            hi = middle
    return lo


def _most_chars_within(text: str, start: int, window: deque[Span], limit: int, counter: TokenCounter) -> int:
    """Where to cut one token that alone counts over limit: the most characters that fit, at least one."""
    lo, hi = start + 1, window[1][0] if len(window) > 1 else window[0][1]
    if counter.count(text[start:lo]) > limit:
        return lo  # one character over the limit: nothing smaller exists, and the text must move on
    while hi - lo > 1:
        middle = (lo + hi) // 2
        if counter.count(text[start:middle]) <= limit:
            lo = middle
        else:
            hi = middle
    return lo
