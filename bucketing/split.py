"""Split each bucket once into train and validation: the same split on any machine, in any line order.

A rollout's place is decided by its content, not its position: a 128-bit digest (the group
key of a grouped rollout, BLAKE2b of the line's bytes otherwise; of a parquet row, of its whole row as
JSON), mixed with the seed. In each
bucket the rollouts are ordered by that mixed value and the first ``round(fraction * n)`` go to
validation (rounded half up, as the fraction is written), so every bucket gives the same share
(stratified) and a rollout is in exactly one of the two. Identical lines have one digest and
always go to the same side: the cut moves to the nearest place between two different ones. Cumulative stages are unions of these halves, so a validation rollout of one stage
is never in the training rows of another.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from fractions import Fraction

import numpy as np

from .bytecopy import Shrunk, pread_pieces
from .dataset import Dataset
from .errors import BucketingError
from .parquet_read import is_parquet, row_digests
from .sources import display

DIGEST_BYTES = 16
SourceOpener = Callable[[int], AbstractContextManager[int]]  # file_id -> a context giving an fd of its bytes


def check_fraction(fraction: float) -> None:
    if not 0 < fraction < 1:
        raise BucketingError(f"--val-fraction must be between 0 and 1 (exclusive), not {fraction}")


def validation_rollouts(
    dataset: Dataset, ids: np.ndarray, fraction: float, open_source: SourceOpener, seed: int = 0
) -> np.ndarray:
    """Per rollout, whether it goes to validation; ``ids`` is each rollout's bucket, ``sources`` as in
    :func:`rollout_digests`."""
    check_fraction(fraction)
    digests = rollout_digests(dataset, open_source)
    mixed = _mix(digests, seed)
    order = np.lexsort((digests[:, 1], digests[:, 0], mixed, ids))  # by bucket, then by the mixed value
    ordered_ids, ordered_digests = ids[order], digests[order]
    differs = np.ones(len(order) + 1, dtype=bool)  # a cut may fall before position i only where differs[i]
    differs[1:-1] = (ordered_digests[1:] != ordered_digests[:-1]).any(axis=1)
    validation = np.zeros(len(ids), dtype=bool)
    share = Fraction(repr(float(fraction)))  # 0.7 as written, not 0.69999999999999996
    for bucket in np.unique(ordered_ids):
        start, stop = (int(i) for i in np.searchsorted(ordered_ids, [bucket, bucket + 1]))
        target = math.floor(share * (stop - start) + Fraction(1, 2))
        cuts = np.flatnonzero(differs[start : stop + 1])  # 0 and stop - start are always allowed
        count = int(cuts[np.argmin(np.abs(cuts - target))])  # the nearest allowed cut (the lower on a tie)
        validation[order[start : start + count]] = True
    return validation


def rollout_digests(dataset: Dataset, open_source: SourceOpener) -> np.ndarray:
    """A 128-bit digest per rollout, as two uint64 columns: the group key, or a hash of the line's bytes.

    ``open_source(file_id)`` gives an fd of the file's bytes at the scan's offsets (decompressed): the
    export's, so that a compressed or remote file is decompressed or fetched once for the split and the copy.
    """
    if dataset.keys is not None:
        return dataset.keys
    rows = dataset.rollout_columns
    file_ids = rows["file_id"]
    digests = np.zeros((len(file_ids), 2), dtype=np.uint64)

    def hash_file(file_id: int) -> None:  # rows are in input order: each file's are one slice
        members = slice(*np.searchsorted(file_ids, [file_id, file_id + 1]).tolist())
        if is_parquet(dataset.files[file_id]):  # offsets are row numbers: hash each row's JSON encoding
            hashed = row_digests(dataset.files[file_id], rows["offset"][members].tolist(), DIGEST_BYTES)
            digests[members] = np.frombuffer(hashed, dtype="<u8").reshape(-1, 2)
            return
        found = bytearray()
        try:
            with open_source(file_id) as source:
                for offset, length in zip(rows["offset"][members].tolist(), rows["length"][members].tolist()):
                    hasher = hashlib.blake2b(digest_size=DIGEST_BYTES)
                    for data in pread_pieces(source, offset, length):
                        hasher.update(data)  # hashlib lets other threads run while it hashes large pieces
                    found += hasher.digest()
        except Shrunk:  # said with the file's name; any other error is already said well
            raise BucketingError(
                f"{display(dataset.files[file_id].rel)} got shorter since it was read; load it again"
            ) from None
        digests[members] = np.frombuffer(found, dtype="<u8").reshape(-1, 2)

    with ThreadPoolExecutor(max(1, min(os.cpu_count() or 1, len(dataset.files)))) as pool:
        list(pool.map(hash_file, np.unique(file_ids).tolist()))
    return digests


def _mix(digests: np.ndarray, seed: int) -> np.ndarray:
    """A 64-bit value per digest that looks random and changes completely with the seed (splitmix64)."""
    with np.errstate(over="ignore"):
        salt = _splitmix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
        return _splitmix(_splitmix(digests[:, 0] ^ salt) ^ digests[:, 1])


def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))
