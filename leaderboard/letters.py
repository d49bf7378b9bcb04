"""Compact letter display: letters such that two rows share a letter exactly when they are not
significantly different (insert-and-absorb, Piepho 2004, J. Comp. Graph. Stat. 13:456).

Start with one letter column holding every row. For each significantly different pair, every
column holding both is split into a copy without the first and a copy without the second; then
columns contained in another column are absorbed (dropped). Letters go to the columns in the
order of their best member (rows are given best first), so the best row carries "a".
"""
from __future__ import annotations

import string
from typing import Hashable, Iterable

LETTERS = string.ascii_lowercase + string.ascii_uppercase


def _absorb(columns: list[frozenset]) -> list[frozenset]:
    unique = list(dict.fromkeys(columns))
    return [c for c in unique if not any(c < other for other in unique)]


def letter_columns(order: list[Hashable], different: Iterable[tuple[Hashable, Hashable]]) -> list[frozenset]:
    columns = [frozenset(order)]
    for a, b in different:
        split: list[frozenset] = []
        for column in columns:
            if a in column and b in column:
                split += [column - {a}, column - {b}]
            else:
                split.append(column)
        columns = _absorb(split)
    rank = {item: i for i, item in enumerate(order)}
    return sorted((c for c in columns if c), key=lambda c: sorted(rank[i] for i in c))


def _name(index: int) -> str:
    """a..z, A..Z, then a2, b2, ... (a display with over 52 groups is unreadable anyway)."""
    letter, round_ = LETTERS[index % len(LETTERS)], index // len(LETTERS)
    return letter if round_ == 0 else f"{letter}{round_ + 1}"


def compact_letters(order: list[Hashable], different: Iterable[tuple[Hashable, Hashable]]) -> dict[Hashable, str]:
    """Row -> its letters ("a", "ab", ...). `order`: rows best first; `different`: the pairs that
    differ significantly (every other pair is "not significantly different")."""
    columns = letter_columns(order, different)
    names = [_name(i) for i in range(len(columns))]
    joiner = "," if len(columns) > len(LETTERS) else ""
    return {item: joiner.join(name for name, column in zip(names, columns) if item in column) for item in order}
