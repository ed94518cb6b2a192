"""Rollouts matched to the rows of their training-set source by a join key; where each source row goes.

Keys are compared as ``--group-by`` compares values (canonical JSON: 1 and 1.0 alike, object keys in any
order), as 16-byte join keys (:mod:`bucketing.joinkey`).  A source row follows the bucket (and the train/val
side) of the rollouts with its key; every source row with a key follows it (duplicates); a row no rollout
matched is *unscored*.  A key whose rollouts sit in different buckets (or on both sides of a split) is refused:
a row can follow only one, and ``--group-by`` of the join field makes those rollouts one, scored together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .dataset import Dataset
from .errors import BucketingError
from .joinkey import INT_TAG, KINDS, NO_KEY, key_of_raw
from .layout import FILE, KEY_BYTES, parse_group_by
from .plan import Plan
from .rolloutfields import rollout_fields
from .sources import display
from .trainset import Source, SourceRows, find_source, read_rows
from .wording import counted

EXAMPLES = 5
UNSCORED = -1  # the destination of a source row no rollout matched
DENSE_SPAN = 4  # integer keys spread over at most this many times their count are numbered without a sort


def check_join_flags(train_set: str | None, join_on: str | None, annotate: str | None, engine: str = "local") -> None:
    """The training-set flags fit together (checked before anything is read)."""
    if train_set and not join_on:
        raise BucketingError(
            "--train-set needs --join-on: the rollout field that names a source row (extra_info.index)"
        )
    if not train_set and (join_on or annotate):
        raise BucketingError(f"{'--join-on' if join_on else '--annotate'} applies to --train-set; give the source")
    if train_set and engine != "local":
        raise BucketingError("--train-set is written by the local engine; drop --engine ray")
    if annotate and join_on:
        field = parse_group_by(annotate)
        source = parse_join_on(join_on)[1]
        if len(field) != 1 or field[0] == FILE:
            raise BucketingError(f"--annotate {annotate!r}: give one field, e.g. extra_info.difficulty")
        if field[0] == source or source.startswith(field[0] + ".") or field[0].startswith(source + "."):
            raise BucketingError(f"--annotate {annotate} would overwrite the join field {source}; choose another field")


def parse_join_on(text: str) -> tuple[str, str]:
    """``ROLLOUT_FIELD[=SOURCE_FIELD]`` -> both fields, spelled as ``--group-by`` spells them."""
    rollout, _, source = text.partition("=")

    def one(part: str) -> str:
        fields = parse_group_by(part) if part.strip() else ()
        if len(fields) != 1 or fields[0] == FILE:
            raise BucketingError(
                f"--join-on {text!r}: give one field, or ROLLOUT_FIELD=SOURCE_FIELD (extra_info.index)"
            )
        return fields[0]

    first = one(rollout)
    return first, one(source) if source else first


@dataclass
class Join:
    """The rollouts and the source rows, matched by key (see the module's doc)."""

    source: Source
    rollout_field: str
    source_field: str
    rows: SourceRows
    rollout_group: np.ndarray  # per rollout: its key's number, -1 for a rollout without the field
    row_group: np.ndarray  # per source row: its key's number
    first_rollout: np.ndarray  # per key: the first rollout with it, -1 when only the source has it
    missing: list[int]  # rollouts without the join field (the first few)
    missing_count: int
    _counts: dict[str, int] | None = field(default=None, init=False, repr=False, compare=False)  # see counts()

    @property
    def row_rollout(self) -> np.ndarray:
        """Per source row: the first rollout with its key, -1 for an unscored row."""
        return self.first_rollout[self.row_group]

    @property
    def matched(self) -> np.ndarray:
        """Per rollout: whether a source row has its key."""
        has_row = np.zeros(len(self.first_rollout), dtype=bool)
        has_row[self.row_group] = True
        return (self.rollout_group >= 0) & has_row[np.maximum(self.rollout_group, 0)]

    def counts(self) -> dict[str, int]:
        """How many rows and rollouts matched, and how (worked out once: the match rate, the check of the types,
        the manifest and the command line all ask)."""
        if self._counts is None:
            self._counts = self._count()
        return dict(self._counts)

    def _count(self) -> dict[str, int]:
        per_key = np.bincount(self.row_group, minlength=len(self.first_rollout))
        matched = self.matched
        return {
            "source_rows": len(self.row_group),
            "matched_rows": int((self.row_rollout >= 0).sum()),
            "unscored_rows": int((self.row_rollout < 0).sum()),
            "rollouts": len(matched),
            "matched_rollouts": int(matched.sum()),
            "unmatched_rollouts": int((~matched).sum()),
            "duplicate_keys": int((per_key > 1).sum()),
        }

    def unmatched_examples(self, dataset: Dataset) -> list[str]:
        """``file:line`` of a few rollouts no source row matched (said why when the field is missing)."""
        missing = [f"{_where(dataset, r)} (no field {self.rollout_field})" for r in self.missing[:EXAMPLES]]
        others = np.flatnonzero(~self.matched & (self.rollout_group >= 0))[: EXAMPLES - len(missing)]
        return missing + [_where(dataset, int(r)) for r in others]

    def duplicate_examples(self) -> list[str]:
        """A few keys held by several source rows, each as the rows' places."""
        per_key = np.bincount(self.row_group, minlength=len(self.first_rollout))
        examples = []
        for key in np.flatnonzero(per_key > 1)[:EXAMPLES].tolist():
            rows = np.flatnonzero(self.row_group == key)
            places = ", ".join(self.rows.where(self.source, int(r)) for r in rows[:3])
            examples.append(places + (f" and {len(rows) - 3} more" if len(rows) > 3 else ""))
        return examples

    def destinations(self, dataset: Dataset, plan: Plan, ids: np.ndarray, held_out: np.ndarray | None) -> tuple:
        """Per source row: its bucket (UNSCORED for none) and whether it is held out for validation.

        Refuses keys whose rollouts disagree on either (see the module's doc).
        """
        side = np.zeros(len(ids), dtype=bool) if held_out is None else held_out
        code = ids.astype(np.int64) * 2 + side  # bucket and side in one number
        keyed = np.flatnonzero(self.rollout_group >= 0)
        groups = self.rollout_group[keyed]
        low = np.full(len(self.first_rollout), np.iinfo(np.int64).max)
        high = np.full(len(self.first_rollout), -1)
        np.minimum.at(low, groups, code[keyed])
        np.maximum.at(high, groups, code[keyed])
        has_row = np.zeros(len(self.first_rollout), dtype=bool)
        has_row[self.row_group] = True
        split = np.flatnonzero((low != high) & (high >= 0) & has_row)
        if len(split):
            self._refuse_split(dataset, plan, split, code, held_out is not None)
        row_code = np.where(self.row_rollout >= 0, low[self.row_group], -2)
        return row_code // 2, (row_code % 2).astype(bool) & (row_code >= 0)

    def _refuse_split(self, dataset: Dataset, plan: Plan, split: np.ndarray, code: np.ndarray, parts: bool) -> None:
        key = int(split[0])
        members = np.flatnonzero(self.rollout_group == key)
        first = int(members[0])
        other = int(members[np.flatnonzero(code[members] != code[first])[0]])

        def place(rollout: int) -> str:
            side = ("/val" if code[rollout] % 2 else "/train") if parts else ""
            return f"{_where(dataset, rollout)} in {plan.names[int(code[rollout] // 2)]}{side}"

        raise BucketingError(
            f"--join-on {self.rollout_field}: {counted(len(split), 'key')} of the training set "
            f"{'has' if len(split) == 1 else 'have'} rollouts in different buckets or parts (e.g. {place(first)}, "
            f"{place(other)}), and a source row can follow only one; make them one rollout with "
            f"--group-by {self.rollout_field}"
        )


def _where(dataset: Dataset, rollout: int) -> str:
    rows = dataset.rollout_columns
    return dataset.where(int(rows["file_id"][rollout]), int(rows["line"][rollout]))


def join(dataset: Dataset, source: str | Source, join_on: str, roots=None) -> Join:
    """Find the source (unless found already), read its keys and the rollouts', and match them."""
    rollout_field, source_field = parse_join_on(join_on)
    found = source if isinstance(source, Source) else find_source(source, roots)
    rows = read_rows(found, source_field)
    keys, has, kinds, missing = rollout_keys(dataset, rollout_field)
    return match(found, rollout_field, source_field, rows, keys, has, kinds, missing)


def rollout_keys(dataset: Dataset, field: str) -> tuple[np.ndarray, np.ndarray, set[str], list[int]]:
    """Per rollout, the join key of ``field`` in its first line: keys (rows, 2), whether it has one, the kinds of
    values seen, and the rollouts without it (the first few, and how many in all, as the list's length).

    Read by the load's scan when it was asked to (``load(join_on=field)``), else read back now (a second pass).
    """
    if dataset.join_on == field and dataset.join_keys is not None and dataset.join_kinds is not None:
        keys, kinds = dataset.join_keys, dataset.join_kinds
    else:
        keys, kinds = read_keys(dataset, field)
    has = kinds != NO_KEY
    seen = {KINDS[code] for code in np.unique(kinds[has]).tolist()}
    return keys, has, seen, np.flatnonzero(~has).tolist()


def read_keys(dataset: Dataset, field: str) -> tuple[np.ndarray, np.ndarray]:
    """Per rollout, the join key of ``field`` in its first line and its kind, read back from the files (what
    the scan reads when asked: see :mod:`bucketing.joinkey`)."""
    keys = bytearray()
    kinds = bytearray()
    for _, (raw,) in rollout_fields(dataset, (field,)):
        key, kind = key_of_raw(raw, field)
        keys += key
        kinds.append(kind)
    return np.frombuffer(bytes(keys), dtype="<u8").reshape(-1, KEY_BYTES // 8), np.frombuffer(bytes(kinds), np.uint8)


def match(
    source: Source,
    rollout_field: str,
    source_field: str,
    rows: SourceRows,
    keys: np.ndarray,
    has: np.ndarray,
    kinds: set[str],
    missing: list[int],
) -> Join:
    """Number the distinct keys of both sides (one sort of them all) and link each to its first rollout."""
    keyed = np.flatnonzero(has)
    number, distinct = _number_keys(keys if len(keyed) == len(keys) else keys[keyed], rows.keys)
    rollout_group = np.full(len(has), -1, dtype=np.int64)
    rollout_group[keyed] = number[: len(keyed)]
    first_rollout = np.full(distinct, -1, dtype=np.int64)
    first_rollout[rollout_group[keyed][::-1]] = keyed[::-1]  # the last write wins: the first rollout of each key
    found = Join(
        source, rollout_field, source_field, rows, rollout_group, number[len(keyed) :], first_rollout,
        missing[:EXAMPLES], len(missing),
    )  # fmt: skip
    _check_types(found, kinds)
    return found


def _number_keys(rollout_keys: np.ndarray, row_keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Both sides' keys (rows, 2) numbered together, equal keys alike, in the keys' order; and how many distinct.

    Integer keys within a span of a few times their count (indexes, the usual join key) are numbered by their
    place in that span (no sort); others sorted (:func:`_sorted_keys`). The numbers are the same either way."""
    count = len(rollout_keys) + len(row_keys)
    if count and (rollout_keys[:, 1] == INT_TAG).all() and (row_keys[:, 1] == INT_TAG).all():
        values = np.concatenate([rollout_keys[:, 0], row_keys[:, 0]])  # the integers, as uint64: in the sort's order
        low = values.min()
        span = int(values.max() - low) + 1
        if span <= DENSE_SPAN * count:
            values -= low
            present = np.zeros(span, dtype=bool)
            present[values] = True
            numbers = np.cumsum(present, dtype=np.int64)
            return numbers[values] - 1, int(numbers[-1])
    both = np.concatenate([rollout_keys, row_keys])
    order, starts = _sorted_keys(both)
    number = np.empty(len(both), dtype=np.int64)
    number[order] = np.cumsum(starts) - 1
    return number, int(starts.sum())


def _sorted_keys(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An order that puts equal keys (rows, 2) together, and where each run of equal keys starts in it.

    Sorted by the first half alone (a third of a two-column sort's time); by both only when two different keys
    share a first half (never for integer keys, whose first half is the integer)."""
    order = np.argsort(keys[:, 0])
    first, second = keys[order, 0], keys[order, 1]
    same_first = first[1:] == first[:-1]
    if (same_first & (second[1:] != second[:-1])).any():
        order = np.lexsort((keys[:, 1], keys[:, 0]))
        first, second = keys[order, 0], keys[order, 1]
        same_first = first[1:] == first[:-1]
    starts = np.ones(len(keys), dtype=bool)
    starts[1:] = ~(same_first & (second[1:] == second[:-1]))
    return order, starts


def _check_types(found: Join, rollout_kinds: set[str]) -> None:
    """No key matches and the two sides hold values of different types ("1" and 1): say so, in one line."""
    counts = found.counts()
    if counts["matched_rollouts"] or not counts["source_rows"] or not rollout_kinds:
        return
    if rollout_kinds != found.rows.kinds:
        theirs, ours = " or ".join(sorted(rollout_kinds)), " or ".join(sorted(found.rows.kinds))
        raise BucketingError(
            f"--join-on: no rollout's {found.rollout_field} matches a source row's {found.source_field}: "
            f"the rollouts' values are of type {theirs}, the source's of type {ours} ({display(found.source.path)}); "
            'make them one type ("1" and 1 differ)'
        )


def match_lines(join: Join, dataset: Dataset) -> list[str]:
    """The match rate in words (what a dry run prints before anything is written)."""
    c = join.counts()
    rollouts = (
        f"{c['matched_rollouts']:,} of {c['rollouts']:,} rollouts ({_share(c['matched_rollouts'], c['rollouts'])})"
    )
    rows = f"{c['matched_rows']:,} of {c['source_rows']:,} source rows ({_share(c['matched_rows'], c['source_rows'])})"
    lines = [
        f"Training set: {display(join.source.path)} ({join.source.format}, {counted(len(join.source.files), 'file')}), "
        f"joined on {join.rollout_field} = {join.source_field}",
        f"  matched {rollouts}; {rows}",
    ]
    if c["unmatched_rollouts"]:
        lines.append(f"  {counted(c['unmatched_rollouts'], 'rollout')} without a source row, e.g.:")
        lines += [f"    {example}" for example in join.unmatched_examples(dataset)]
    if c["duplicate_keys"]:
        lines.append(f"  {counted(c['duplicate_keys'], 'key')} held by several source rows (each follows it), e.g.:")
        lines += [f"    {example}" for example in join.duplicate_examples()]
    return lines


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"
