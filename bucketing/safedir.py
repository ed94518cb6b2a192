"""A folder opened once, and every name below it reached without following a link.

An export creates, renames and removes files only through a :class:`Folder`: the output
folder is opened once (its last component must not be a link; with allowed roots, its real
path must lie inside one), and each sub-folder is opened from it one component at a time
with ``O_NOFOLLOW``.  Replacing the folder, or a sub-folder, by a link between a check and a
write then changes nothing: the writes go where the check looked, or fail.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from .errors import BucketingError, display
from .sources import fd_path, inside

DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def outside_message(path: str | os.PathLike) -> str:
    return f"{display(path)} leads outside the folders this app may use (a link?); choose a folder inside them"


def _link_error(path: str | os.PathLike, error: OSError) -> BucketingError:
    if error.errno in (errno.ELOOP, errno.ENOTDIR):
        return BucketingError(f"{display(path)} is a link or not a folder; remove it or choose another folder")
    if error.errno == errno.ENAMETOOLONG:
        return BucketingError(f"{display(str(path)[:80])}… is too long a path; choose a shorter one")
    return BucketingError(f"{display(path)} can't be used: {error.strerror}")


def _open_below_root(path: Path, roots: list[Path], create: bool) -> int:
    root = next((root for root in roots if inside(path, [root])), None)
    if root is None:
        raise BucketingError(outside_message(path))
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # a root is trusted, links and all
    for part in path.relative_to(root).parts:
        try:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
            below = os.open(part, DIRECTORY, dir_fd=fd)
        finally:
            os.close(fd)
        fd = below
    return fd


class Folder:
    """An open directory; names are relative to it (``a/b.jsonl``), never ``..``, never through a link."""

    def __init__(self, fd: int, path: Path, real: Path | None = None):
        self.fd, self.path = fd, path
        self.real = real or path  # where the opened folder really is (no link, no "..")
        self.subfolders: dict[str, int] = {}  # "train/cumulative" -> fd, opened once

    @classmethod
    def open(cls, path: str | os.PathLike, roots: list[Path] | None = None, create: bool = False) -> Folder:
        """Open folder ``path`` (made first with ``create``); refused when it is a link.

        With ``roots`` (resolved), ``path`` must lie in one of them: it is then reached from that root
        one component at a time, made and opened without following a link, and checked once open.
        """
        # With roots, no component below the root may be a link, so ".." read lexically is ".." on the
        # disk; without, the path is left for the kernel to follow as typed (``a/link/..`` is link's parent).
        path = Path(os.path.abspath(path)) if roots is not None else Path(os.getcwd(), path)
        try:
            if roots is None:
                if create:
                    path.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, DIRECTORY)
            else:
                fd = _open_below_root(path, roots, create)
        except OSError as error:
            raise _link_error(path, error) from None
        real = fd_path(fd)
        if roots is not None and (real is None or not inside(real, roots)):
            os.close(fd)
            raise BucketingError(outside_message(path))
        return cls(fd, path, real)

    def close(self) -> None:
        for fd in self.subfolders.values():
            os.close(fd)
        self.subfolders.clear()
        os.close(self.fd)

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def folder_fd(self, rel: str, create: bool = False) -> int:
        """The fd of sub-folder ``rel`` ("" is this folder), each component opened without following links."""
        if not rel:
            return self.fd
        if rel in self.subfolders:
            return self.subfolders[rel]
        parent, name = rel.rpartition("/")[::2]
        if name in ("", ".", ".."):
            raise BucketingError(f"{display(rel)} is not a plain folder name")
        parent_fd = self.folder_fd(parent, create)
        try:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=parent_fd)
            fd = os.open(name, DIRECTORY, dir_fd=parent_fd)
        except OSError as error:
            raise _link_error(self.path / rel, error) from None
        self.subfolders[rel] = fd
        return fd

    def where(self, name: str, create: bool = False) -> tuple[int, str]:
        """``(fd of the folder holding name, its last component)``."""
        parent, base = name.rpartition("/")[::2]
        if base in ("", ".", ".."):
            raise BucketingError(f"{display(name)} is not a plain file name")
        return self.folder_fd(parent, create), base

    def has_folder(self, rel: str) -> bool:
        """Whether sub-folder ``rel`` exists (a link there raises, as it would on use)."""
        try:
            self.folder_fd(rel)
        except BucketingError:
            if self.lstat(rel) is None:
                return False
            raise
        return True

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry ``name`` itself (a link is not followed); None when it, or a folder on the way, is missing."""
        try:
            fd, base = self.where(name)
            return os.stat(base, dir_fd=fd, follow_symlinks=False)
        except BucketingError:
            return None
        except FileNotFoundError:
            return None

    def open_file(self, name: str, flags: int, mode: int = 0o666) -> int:
        fd, base = self.where(name)
        return os.open(base, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=fd)

    def replace(self, source: str, target: str) -> None:
        """Rename ``source`` to ``target`` (replacing it); the target's folders are made when missing."""
        source_fd, source_base = self.where(source)
        target_fd, target_base = self.where(target, create=True)
        os.replace(source_base, target_base, src_dir_fd=source_fd, dst_dir_fd=target_fd)

    def rename(self, source: str, target: str) -> None:
        """As :meth:`replace`; a different call, so that undoing a failed replace does not fail the same way."""
        source_fd, source_base = self.where(source)
        target_fd, target_base = self.where(target, create=True)
        os.rename(source_base, target_base, src_dir_fd=source_fd, dst_dir_fd=target_fd)

    def link(self, source: str, target: str) -> None:
        source_fd, source_base = self.where(source)
        target_fd, target_base = self.where(target)
        os.link(source_base, target_base, src_dir_fd=source_fd, dst_dir_fd=target_fd, follow_symlinks=False)

    def unlink(self, name: str, missing_ok: bool = True) -> None:
        fd, base = self.where(name)
        try:
            os.unlink(base, dir_fd=fd)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def remove_empty_folder(self, rel: str) -> None:
        """Remove sub-folder ``rel`` if it is empty (never a link: rmdir does not follow one)."""
        fd = self.subfolders.pop(rel, None)
        if fd is not None:
            os.close(fd)
        parent_fd, base = self.where(rel)
        with contextlib.suppress(OSError):  # not empty, gone, or not a folder: left as it is
            os.rmdir(base, dir_fd=parent_fd)

    def is_regular_file(self, name: str) -> bool:
        info = self.lstat(name)
        return info is not None and stat.S_ISREG(info.st_mode)

    def entries(self) -> list[os.DirEntry]:
        """The entries of this folder itself."""
        with os.scandir(self.fd) as found:
            return list(found)

    def sync(self, rel: str = "") -> None:
        os.fsync(self.folder_fd(rel))

    def read_bytes(self, name: str, limit: int) -> bytes:
        """The first ``limit`` bytes of a regular file ``name`` (a link or a FIFO is refused)."""
        fd = self.open_file(name, os.O_RDONLY | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise BucketingError(f"{display(self.path / name)} is not a regular file")
            chunks, left = [], limit
            while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
                chunks.append(chunk)
                left -= len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
