"""Build samples/python-modules/: long documents, the full pydoc text of Python standard-library modules.

Why this text: each document is real prose and reference shipped with Python (`pydoc.render_doc(module,
renderer=pydoc.plaintext)`), thousands of words long, and the answer to a question about a module often
sits far from its start, where a model that reads only the first 256 wordpieces never looks. That is what
chunking must fix, and bench/long_documents.py measures it on these documents and questions.jsonl.

The output is committed; rerun only to change the sample. The text depends on the Python version that
builds it (the README of samples/ names it).
"""

from __future__ import annotations

import importlib
import json
import pydoc
import re
import sys
import warnings
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "samples" / "python-modules"
# Modules whose documentation is mostly prose about one topic, long enough to need chunking (a few thousand
# words) and short enough that the sample stays a few MB.
MODULE_NAMES = (
    "abc argparse ast asyncio.locks asyncio.queues base64 bisect bz2 calendar cmd codecs collections "
    "colorsys configparser contextlib copy csv dataclasses datetime difflib dis enum filecmp fileinput "
    "fnmatch fractions ftplib functools getopt getpass gettext glob graphlib gzip hashlib heapq hmac "
    "html.parser http.cookies imaplib inspect ipaddress itertools json logging lzma mailbox mimetypes "
    "netrc numbers operator optparse pathlib pickle pkgutil platform plistlib poplib pprint queue quopri "
    "random re reprlib sched secrets selectors shelve shlex shutil smtplib socketserver sqlite3 statistics "
    "string struct subprocess tabnanny tarfile tempfile textwrap threading timeit tomllib trace traceback "
    "typing unittest.mock urllib.parse uuid wave weakref zipfile zoneinfo"
)
MODULES = MODULE_NAMES.split()
MIN_WORDS = 1_000
MAX_CHARS = 150_000
# The questions, written from reading the documents: (document, question, evidence). The evidence is the
# passage that answers the question, quoted exactly; main() checks that it lies past DEEP_WORDS words into
# its document, beyond what a model reading only the first 256 wordpieces sees.
DEEP_WORDS = 350
QUESTIONS = (
    (
        "bz2",
        "what compression level does a bz2 file use if I don't choose one?",
        "the default compresslevel is 9",
    ),
    (
        "calendar",
        "how can I tell whether a given year is a leap year?",
        "Return True for leap years, False for non-leap years.",
    ),
    (
        "codecs",
        "encode a stream of strings chunk by chunk with an incremental encoder",
        "Encodes the input strings from the iterator using an IncrementalEncoder.",
    ),
    (
        "configparser",
        "load INI settings from a Python dict whose keys are section names",
        "Read configuration from a dictionary. Keys are section names,",
    ),
    (
        "csv",
        "register a named dialect for reading comma separated files",
        "Create a mapping from a string name to a dialect class.",
    ),
    (
        "dataclasses",
        "turn a dataclass instance into a tuple of its field values",
        "Return the fields of a dataclass instance as a new tuple of field values.",
    ),
    (
        "fileinput",
        "rewrite a file in place while keeping a backup copy with a given extension",
        "it specifies the extension for the backup file",
    ),
    (
        "gzip",
        "which mode strings open a gzip-compressed file as text?",
        '"rt", "wt", "xt" or "at" for text mode',
    ),
    (
        "imaplib",
        "what kinds of date values are accepted when appending a message to an IMAP mailbox?",
        "date_time argument can be a number (int or float) representing",
    ),
    (
        "inspect",
        "find the module name that corresponds to a file path",
        "Return the module name for a given file, or None.",
    ),
    (
        "ipaddress",
        "collapse a first and last IP address into the list of networks covering that range",
        "Summarize a network range given the first and last IP addresses.",
    ),
    (
        "json",
        "how do I get the most compact JSON output, without newlines or indentation?",
        "``None`` is the most compact",
    ),
    (
        "logging",
        "what happens when I log through the root logger before configuring any handler?",
        "call basicConfig() to add a console handler",
    ),
    ("lzma", "what is the default mode when opening an xz compressed file?", '"rb" (default)'),
    (
        "mimetypes",
        "guess a file name extension from a MIME type",
        "Guess the extension for a file based on its MIME type.",
    ),
    (
        "operator",
        "count how many items of a sequence are equal to a value",
        "Return the number of items in a which are, or which equal, b.",
    ),
    (
        "pickle",
        "which serialization protocol versions can I choose from?",
        "supported protocols are 0, 1, 2, 3, 4 and 5",
    ),
    (
        "pkgutil",
        "read a data file bundled inside an installed package",
        "The function returns a binary string, which is the contents of the",
    ),
    (
        "random",
        "draw from a log-normal distribution: which values may mu and sigma take?",
        "mu can have any value, and sigma must be greater than zero.",
    ),
    (
        "re",
        "which escape in a regular expression matches at a word boundary?",
        "Matches the empty string, but only at the start or end of a word.",
    ),
    (
        "secrets",
        "compare two tokens without leaking timing information",
        "types and lengths of a and b--but not their values.",
    ),
    (
        "shelve",
        "why is closing my persistent dictionary so slow with writeback enabled?",
        "it may make d.close() very slow",
    ),
    (
        "shutil",
        "copy a directory tree into a destination folder that already exists",
        "If dirs_exist_ok is false (the default) and `dst` already exists",
    ),
    (
        "sqlite3",
        "convert database column values into custom Python objects when reading rows",
        "Register a function to convert SQLite values to Python objects.",
    ),
    (
        "statistics",
        "estimate the median of grouped continuous data in class intervals",
        "Estimates the median for numeric data binned around the midpoints",
    ),
    (
        "struct",
        "pack values into a writable buffer starting at an offset",
        "according to the format string and write",
    ),
    (
        "subprocess",
        "run a shell command and get its output as a string",
        "Return output (stdout or stderr) of executing cmd in a shell.",
    ),
    (
        "tarfile",
        "read a gzip compressed archive as a stream of blocks from a pipe",
        "open a gzip compressed stream of tar blocks",
    ),
    (
        "tempfile",
        "who can read and write a securely created temporary file?",
        "The file is readable and writable only by the creating user ID.",
    ),
    (
        "threading",
        "install a trace function for every thread I start",
        "Set a trace function for all threads started from the threading module.",
    ),
    (
        "uuid",
        "what happens when the hardware MAC address cannot be found for a time-based identifier?",
        "choose a random 48-bit number with its eighth bit set to 1",
    ),
    (
        "wave",
        "what do I have to do after writing all audio frames to a WAV file?",
        "When all frames have been written, either call writeframes(b'') or",
    ),
    (
        "weakref",
        "list every weak reference that points to an object",
        "Return a list of all weak reference objects pointing to 'object'.",
    ),
    (
        "zipfile",
        "quickly check whether a file is a ZIP archive",
        "Quickly see if a file is a ZIP file by checking the magic number.",
    ),
    (
        "typing",
        "mark one key of a typed dictionary as allowed to be missing",
        'NotRequired[int]  # the "y" key can be omitted',
    ),
    (
        "unittest.mock",
        "when does patching create an AsyncMock instead of a MagicMock?",
        "used for async functions and `MagicMock` for the rest.",
    ),
)


def render(name: str) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = importlib.import_module(name)
    except ImportError:
        return None
    text = pydoc.render_doc(module, renderer=pydoc.plaintext)
    # The FILE section names where this machine keeps the module: not part of its documentation.
    text = re.sub(r"\nFILE\n    .*\n", "\n", text)
    # Default values printed as "<... object at 0x7f...>" change with every run.
    text = re.sub(r" at 0x[0-9a-f]+>", ">", text)
    return text.strip() + "\n"


def main() -> None:
    records = []
    for name in MODULES:
        text = render(name)
        if text is None or len(text.split()) < MIN_WORDS or len(text) > MAX_CHARS:
            continue
        records.append({"_id": name, "text": text, "title": name})
    OUT.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    (OUT / "modules.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    texts = {record["_id"]: record["text"] for record in records}
    questions = [json.dumps(question(texts, *entry), ensure_ascii=False) for entry in QUESTIONS]
    (OUT / "questions.jsonl").write_text("\n".join(questions) + "\n", encoding="utf-8")
    size = sum(len(line) for line in lines)
    version = ".".join(map(str, sys.version_info[:3]))
    print(f"{len(records)} documents, {size / 1e6:.1f} MB, from Python {version}, written to {OUT}")


def question(
    texts: dict[str, str], document: str, text: str, evidence: str, *, any_spacing: bool = False
) -> dict[str, str | int]:
    """A question answered deep in `document`, located by its evidence quote; any_spacing: the quote need
    match only up to white space (texts that wrap their lines)."""
    body = " ".join(texts[document].split()) if any_spacing else texts[document]
    at = body.find(" ".join(evidence.split()) if any_spacing else evidence)
    if at < 0:
        raise SystemExit(f"{document}: the evidence of {text!r} is not in its text: {evidence!r}")
    depth, words = len(body[:at].split()), len(body.split())
    if depth <= DEEP_WORDS:
        raise SystemExit(f"{document}: {text!r} is answered at word {depth}, not deep enough")
    return {
        "question": text,
        "document_id": document,
        "evidence": evidence,
        "evidence_word": depth,
        "why": f"answered at word {depth} of {words}, past the first {DEEP_WORDS} words a 256-wordpiece "
        "model reads of the whole document",
    }


if __name__ == "__main__":
    main()
