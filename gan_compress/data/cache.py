"""Decoded-frame cache: every training file is decoded once to raw RGB, then memory-mapped.

Why: sampling random windows straight from H.264 means decoding from the previous keyframe for
every clip, far too slow on two cores. Decoding once and slicing a memmap makes a sample a copy.

Layout (`<root>` is `DataConfig.cache_dir`, else `$GAN_COMPRESS_CACHE`, else
`~/.cache/gan_compress`):

    <root>/frames/<key>/frames.rgb   uint8 [num_frames, height, width, 3], C order, no header
    <root>/frames/<key>/meta.json    {"version", "source", "size", "mtime_ns", "width", "height",
                                      "num_frames", "fps", "pix_fmt", "color"}

`<key>` is the first 32 hex digits of sha256("v<version>|<absolute path>|<mtime_ns>|<size>"):
editing or replacing a source gives a new entry (old ones are never deleted automatically; remove
the directory to reclaim space). RGB is produced by `gan_compress.io` (the file's own ColorSpec,
centred bilinear chroma upsampling), the same conversion evaluation uses. RGB takes twice the
space of yuv420 (~1.5 GB for the shared training set) but makes a sample a plain slice.

Atomicity: an entry is built in `<key>.tmp-<pid>-<random>/` and renamed to `<key>/` when
complete; a directory named `<key>` is always complete. If two processes build the same entry,
the first rename wins and the other discards its copy. A killed build leaves only a `.tmp-`
directory, which `clean_stale_temp_dirs` removes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable

import numpy as np

from gan_compress import io as gio
from gan_compress.io.atomic import pid_alive

CACHE_VERSION = 1


def cache_root(cache_dir: str | None = None) -> str:
    """The directory holding `<key>/` entries."""
    base = (
        cache_dir
        or os.environ.get("GAN_COMPRESS_CACHE")
        or os.path.join(os.path.expanduser("~"), ".cache", "gan_compress")
    )
    return os.path.join(os.path.abspath(os.path.expanduser(base)), "frames")


def cache_key(path: str) -> str:
    path = os.path.abspath(path)
    st = os.stat(path)
    text = f"v{CACHE_VERSION}|{path}|{st.st_mtime_ns}|{st.st_size}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclasses.dataclass(frozen=True)
class CachedClip:
    """One cache entry: the decoded frames of `source` as `frames()` [N, H, W, 3] uint8."""

    source: str
    directory: str
    width: int
    height: int
    num_frames: int

    @property
    def frames_path(self) -> str:
        return os.path.join(self.directory, "frames.rgb")

    def frames(self) -> np.ndarray:
        """Read-only memmap [num_frames, height, width, 3] uint8."""
        return np.memmap(
            self.frames_path,
            dtype=np.uint8,
            mode="r",
            shape=(self.num_frames, self.height, self.width, 3),
        )


def _load(directory: str) -> CachedClip | None:
    try:
        with open(os.path.join(directory, "meta.json")) as f:
            meta = json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if meta.get("version") != CACHE_VERSION:
        return None
    clip = CachedClip(
        source=meta["source"],
        directory=directory,
        width=meta["width"],
        height=meta["height"],
        num_frames=meta["num_frames"],
    )
    expected = clip.num_frames * clip.height * clip.width * 3
    try:
        if os.path.getsize(clip.frames_path) != expected:
            return None
    except FileNotFoundError:
        return None
    return clip


def lookup(path: str, cache_dir: str | None = None) -> CachedClip | None:
    """The cache entry of `path` if it exists (and matches its current mtime and size)."""
    return _load(os.path.join(cache_root(cache_dir), cache_key(path)))


def ensure_cached(
    path: str,
    cache_dir: str | None = None,
    on_frame: Callable[[], None] | None = None,
) -> CachedClip:
    """Returns the cache entry of `path`, decoding the file into the cache first if needed.

    `on_frame` is called after each decoded frame (progress bars). Raises
    `gan_compress.io.VideoError` for unreadable files (nothing is left in the cache).
    """
    path = os.fspath(path)
    root = cache_root(cache_dir)
    directory = os.path.join(root, cache_key(path))
    clip = _load(directory)
    if clip is not None:
        return clip
    os.makedirs(root, exist_ok=True)
    tmp = f"{directory}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    os.mkdir(tmp)
    try:
        st = os.stat(path)
        with gio.open_video(path) as reader, open(os.path.join(tmp, "frames.rgb"), "wb") as out:
            info = reader.info
            n = 0
            for rgb in reader.frames_rgb():
                out.write(np.ascontiguousarray(rgb).data)
                n += 1
                if on_frame is not None:
                    on_frame()
            out.flush()
            os.fsync(out.fileno())
        if n == 0:
            raise gio.EmptyVideoError(path, "no frames decoded")
        meta = {
            "version": CACHE_VERSION,
            "source": os.path.abspath(path),
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "width": info.width,
            "height": info.height,
            "num_frames": n,
            "fps": str(info.fps),
            "pix_fmt": info.pix_fmt,
            "color": dataclasses.asdict(info.color),
        }
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        try:
            os.rename(tmp, directory)
        except OSError:
            # Another process finished the same entry first: use theirs.
            clip = _load(directory)
            if clip is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return clip
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    clip = _load(directory)
    assert clip is not None, directory
    return clip


def clean_stale_temp_dirs(cache_dir: str | None = None) -> list[str]:
    """Removes `.tmp-<pid>-*` build directories whose process is gone. Returns them."""
    root = cache_root(cache_dir)
    removed = []
    if not os.path.isdir(root):
        return removed
    for name in os.listdir(root):
        if ".tmp-" not in name:
            continue
        try:
            pid = int(name.rsplit(".tmp-", 1)[1].split("-")[0])
        except ValueError:
            continue
        if pid == os.getpid() or pid_alive(pid):
            continue
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        removed.append(name)
    return removed

