"""Errors raised when a `.gcv` file cannot be read.

Every error names the file and the problem: `str(err)` is `"<path>: <problem>"`, and the two parts
are kept as `err.path` and `err.problem`. They are all `ValueError`s, so a caller that only wants
"bad input" can catch that; the CLI catches `BitstreamError` and prints the message.
"""

from __future__ import annotations


class BitstreamError(ValueError):
    """Base class: the file is not a readable `.gcv` container."""

    def __init__(self, path: str, problem: str):
        # Both go to args, so the error pickles (e.g. out of a multiprocessing worker).
        super().__init__(path, problem)
        self.path = path
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class BadMagicError(BitstreamError):
    """The file does not start with the `.gcv` magic: it is some other kind of file."""


class UnsupportedVersionError(BitstreamError):
    """The file's major format version is not one this reader understands."""


class FingerprintMismatchError(BitstreamError):
    """The file was written by a different model (weights or config) than the caller expects."""


class TruncatedError(BitstreamError):
    """The file ends early: a cut copy or a writer that was interrupted before `close()`."""


class CRCError(BitstreamError):
    """A checksum does not match: the bytes changed after they were written."""


class AbsurdDimensionsError(BitstreamError):
    """A size field is impossible or above the reader's caps (dimensions, counts, lengths)."""


class MalformedError(BitstreamError):
    """Fields that pass their checksum but break the syntax (unknown enum, inconsistent index)."""
