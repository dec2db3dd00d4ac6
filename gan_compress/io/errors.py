"""The one exception family of `gan_compress.io`.

Every message starts with the file it is about, then says what is wrong, e.g.
`clip.y4m: truncated: frame 3 has 1200 of 152064 bytes`. All classes derive from
`VideoError(ValueError)`, so callers can catch the family with one `except VideoError`.
"""

from __future__ import annotations

import os


class VideoError(ValueError):
    """A video or image file cannot be read or written as asked."""

    def __init__(self, path: str | os.PathLike[str] | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(problem if self.path is None else f"{self.path}: {problem}")


class VideoNotFoundError(VideoError, FileNotFoundError):
    """The file does not exist (also a `FileNotFoundError`)."""


class UnsupportedFormatError(VideoError):
    """Valid file, but a pixel format, container or geometry we do not handle."""


class TruncatedVideoError(VideoError):
    """The file ends in the middle of a frame (or of its header)."""


class EmptyVideoError(VideoError):
    """The file holds no video frames."""
