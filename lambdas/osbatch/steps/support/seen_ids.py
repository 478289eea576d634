"""Which document ids one input file has already used, in 16 bytes an id.

Prepare counts ids that repeat within a file: each such line overwrites the document of an earlier one
(the later line wins, as bulk indexing by `_id` does), and the job report says how many. A Python set of
the ids, or of their hashes, costs about 70 bytes an entry, which a 20-million-line upload turns into
1.4 GB, more than the prepare function has; this open-addressing table of 64-bit hashes in an
array('Q') keeps it at 16 bytes (load factor at most 1/2). Two distinct ids collide with probability
about n^2 / 2^65: 1e-5 for 20 million ids, and then one duplicate too many is counted, nothing else.
"""

from __future__ import annotations

import hashlib
from array import array

INITIAL_SLOTS = 1 << 16
EMPTY = 0  # hashes are forced odd, so no real entry is ever 0


class SeenIds:
    def __init__(self, slots: int = INITIAL_SLOTS) -> None:
        if slots & (slots - 1):
            raise ValueError(f"slots must be a power of two, not {slots}")
        self._table = array("Q", bytes(8 * slots))
        self._mask = slots - 1
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __contains__(self, doc_id: str) -> bool:
        """Whether doc_id was added (a collision says yes for an id never added: the probability above)."""
        entry, table, mask = _entry(doc_id), self._table, self._mask
        slot = (entry >> 1) & mask
        while table[slot] != EMPTY:
            if table[slot] == entry:
                return True
            slot = (slot + 1) & mask
        return False

    def add(self, doc_id: str) -> bool:
        """Record doc_id; False if it was seen before."""
        entry = _entry(doc_id)
        if not self._insert(entry):
            return False
        self._size += 1
        if 2 * self._size > len(self._table):
            self._grow()
        return True

    def _insert(self, entry: int) -> bool:
        table, mask = self._table, self._mask
        slot = (entry >> 1) & mask  # bit 0 is always set; the bits above it are uniform
        while True:
            current = table[slot]
            if current == EMPTY:
                table[slot] = entry
                return True
            if current == entry:
                return False
            slot = (slot + 1) & mask  # linear probing: the table is at most half full

    def _grow(self) -> None:
        old = self._table
        self._table = array("Q", bytes(16 * len(old)))
        self._mask = len(self._table) - 1
        for entry in old:
            if entry != EMPTY:
                self._insert(entry)


def _entry(doc_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest(), "little") | 1
