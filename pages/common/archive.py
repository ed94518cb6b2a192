"""The files an export wrote, read back for the zip download without following a link.

Between the export and the click on "Download all as .zip" someone with access to the output folder
could put a link where a written file (or cumulative/, train/, val/) was; reading by path would then
put whatever it points at (outside the allowed folders) into the zip.  So the folder is opened once
and every component below it without following links (``bucketing.safedir``).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import bucketing
from bucketing.safedir import Folder


def written_sizes(out: str | Path, names: list[str], roots: list[Path]) -> dict[str, int]:
    """name -> size of each of ``names`` that is still a regular file reached without a link."""
    try:
        with Folder.open(out, roots) as folder:
            infos = {name: folder.lstat(name) for name in names}
            return {
                name: info.st_size for name, info in infos.items() if info is not None and folder.is_regular_file(name)
            }
    except (bucketing.BucketingError, OSError):
        return {}  # the folder itself is gone or became a link: nothing to offer


def zipped(out: str | Path, names: list[str], roots: list[Path], limit: int) -> bytes:
    """A zip of ``names`` (sub-folders kept), each read without following links; others left out."""
    buffer = io.BytesIO()
    with Folder.open(out, roots) as folder, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            if not folder.is_regular_file(name):
                continue
            try:
                data = folder.read_bytes(name, limit + 1)
            except (bucketing.BucketingError, OSError):
                continue  # replaced by a link or a FIFO since the check: left out
            if len(data) <= limit:  # (grown past the limit since: left out rather than cut)
                archive.writestr(name, data)
    return buffer.getvalue()
