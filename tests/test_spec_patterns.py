"""Every `pattern` of the spec runs in linear time in Python's backtracking `re`, which the
reference validator (jsonschema) uses: a pattern added later cannot bring back the 21 s stall.

Each pattern is fed strings built from its own structure: a prefix that walks its first items,
then one character class pumped far past the field's `maxLength`, then a character that makes
the match fail at the very end (where backtracking patterns try every split). Each search has a
time budget, enforced by a timer signal (`re` checks signals while it matches), far above what a
linear match costs and far below what a quadratic one does at that length.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

# The parser `re` itself compiles with (sre_parse): the structure of each pattern.
from re import _constants as sre
from re import _parser as sre_parse
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskapi.spec import load_spec

PUMPED_LENGTH = 65_536  # characters, past every maxLength of the spec and inside MAX_BODY_BYTES
BUDGET_SECONDS = 0.25  # a linear search of PUMPED_LENGTH costs about a millisecond
# Candidate characters: every ASCII one and some Unicode ones with distinct classes.
ALPHABET = [chr(c) for c in range(128)] + ["é", "\u00a0", "\u2028", "\u3000", "\ufeff", "😀"]
# The spec's patterns before they were rewritten: each took seconds on 60 kB.
BACKTRACKING = [
    r"^[^\u0000-\u001f\u007f]*[^\s\u0000-\u001f\u007f][^\u0000-\u001f\u007f]*$",
    r"^[^@\s\u0000-\u001f\u007f]+@[^@\s\u0000-\u001f\u007f]+\.[^@\s\u0000-\u001f\u007f]+$",
    r"^(a|aa)+$",
]


def spec_patterns() -> list[tuple[str, str, int | None]]:
    """(where, pattern, maxLength) for every schema of the spec that has a pattern."""
    found: list[tuple[str, str, int | None]] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, Mapping):
            if isinstance(node.get("pattern"), str) and node.get("type", "string") == "string":
                found.append((where, node["pattern"], node.get("maxLength")))
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(load_spec(), "#")
    return found


def _category_matches(category: Any, char: str) -> bool:
    tests = {
        sre.CATEGORY_DIGIT: r"\d",
        sre.CATEGORY_NOT_DIGIT: r"\D",
        sre.CATEGORY_SPACE: r"\s",
        sre.CATEGORY_NOT_SPACE: r"\S",
        sre.CATEGORY_WORD: r"\w",
        sre.CATEGORY_NOT_WORD: r"\W",
    }
    return re.fullmatch(tests[category], char) is not None


def _set_matches(items: list[tuple[Any, Any]], char: str) -> bool:
    negate, hit = False, False
    for op, value in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            hit = hit or ord(char) == value
        elif op is sre.RANGE:
            hit = hit or value[0] <= ord(char) <= value[1]
        elif op is sre.CATEGORY:
            hit = hit or _category_matches(value, char)
        else:
            raise AssertionError(f"unknown set item {op}")
    return hit != negate


def _char_sets(items: Any) -> Iterator[list[tuple[Any, Any]]]:
    """Every one-character item of a parsed pattern, as a set, however deep."""
    for op, value in items:
        if op is sre.IN:
            yield value
        elif op is sre.LITERAL:
            yield [(sre.LITERAL, value)]
        elif op is sre.NOT_LITERAL:
            yield [(sre.NEGATE, None), (sre.LITERAL, value)]
        elif op is sre.ANY:
            yield [(sre.NEGATE, None), (sre.LITERAL, ord("\n"))]
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            yield from _char_sets(value[2])
        elif op is sre.SUBPATTERN:
            yield from _char_sets(value[3])
        elif op is sre.BRANCH:
            for branch in value[1]:
                yield from _char_sets(branch)


def _witness(items: Any, representatives: list[str]) -> str:
    """A short string that the items match (one pass through each repetition)."""
    out = []
    for op, value in items:
        if op in (sre.IN, sre.LITERAL, sre.NOT_LITERAL, sre.ANY):
            out.append(
                next(c for c in representatives if _set_matches(next(_char_sets([(op, value)])), c))
            )
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            out.append(_witness(value[2], representatives) * max(value[0], 1))
        elif op is sre.SUBPATTERN:
            out.append(_witness(value[3], representatives))
        elif op is sre.BRANCH:
            out.append(_witness(value[1][0], representatives))
    return "".join(out)


def adversarial_strings(pattern: str, length: int) -> Iterator[str]:
    """Prefix (the first k items' witness) + one character pumped to `length` + a last one,
    for every k and every class of characters the pattern tells apart."""
    parsed = sre_parse.parse(pattern)
    sets = list(_char_sets(parsed))
    by_signature: dict[tuple[bool, ...], str] = {}
    for char in ALPHABET:
        by_signature.setdefault(tuple(_set_matches(s, char) for s in sets), char)
    representatives = list(by_signature.values())
    tails = [*representatives, "\n", ""]
    items = list(parsed)
    for k in range(len(items) + 1):
        prefix = _witness(items[:k], representatives)
        for pumped in representatives:
            for tail in tails:
                yield prefix + pumped * length + tail


class OverBudgetError(Exception):
    pass


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    def expire(_signum: int, _frame: Any) -> None:
        raise OverBudgetError

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def assert_linear(pattern: str, max_length: int | None) -> None:
    compiled = re.compile(pattern)
    lengths = sorted({*(n for n in (max_length, (max_length or 0) + 1) if n), PUMPED_LENGTH})
    for length in lengths:
        for text in adversarial_strings(pattern, length):
            try:
                with budget(BUDGET_SECONDS):
                    compiled.search(text)
            except OverBudgetError:
                shape = f"{text[:8]!r}... ({len(text)} characters, ending {text[-2:]!r})"
                raise AssertionError(f"{pattern} backtracks on {shape}") from None


@pytest.mark.parametrize(("where", "pattern", "max_length"), spec_patterns())
def test_every_spec_pattern_matches_in_linear_time(
    where: str, pattern: str, max_length: int | None
) -> None:
    assert_linear(pattern, max_length)


@pytest.mark.parametrize("pattern", BACKTRACKING)
def test_the_linearity_check_catches_a_backtracking_pattern(pattern: str) -> None:
    with pytest.raises(AssertionError, match="backtracks"):
        assert_linear(pattern, 200)


def test_every_unique_items_array_has_a_max_items() -> None:
    """uniqueItems compares every pair of object items: only a bounded count keeps it cheap
    (and validation skips it past maxItems)."""

    def unbounded(node: Any, where: str) -> Iterator[str]:
        if isinstance(node, Mapping):
            if node.get("uniqueItems") and "maxItems" not in node:
                yield where
            for key, value in node.items():
                yield from unbounded(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from unbounded(value, f"{where}/{index}")

    assert list(unbounded(load_spec(), "#")) == []


# The rewritten patterns accept exactly what the backtracking ones did.
REWRITTEN = {
    BACKTRACKING[0]: r"^[^\S\u0000-\u001f\u007f]*[^\s\u0000-\u001f\u007f][^\u0000-\u001f\u007f]*$",
    BACKTRACKING[1]: (
        r"^[^@\s\u0000-\u001f\u007f]+@[^@\s\u0000-\u001f\u007f][^@.\s\u0000-\u001f\u007f]*"
        r"\.[^@\s\u0000-\u001f\u007f]+$"
    ),
}


def test_the_rewritten_patterns_are_the_spec_s() -> None:
    assert set(REWRITTEN.values()) <= {pattern for _, pattern, _ in spec_patterns()}


@given(
    text=st.text(
        alphabet=st.sampled_from(["a", ".", "@", " ", "\t", "\x01", "\n", "\u3000", "é"]),
        max_size=12,
    )
)
@settings(max_examples=3000, deadline=None, derandomize=True, database=None)
def test_the_rewritten_patterns_accept_what_the_old_ones_did(text: str) -> None:
    for old, new in REWRITTEN.items():
        assert (re.search(old, text) is None) == (re.search(new, text) is None), (old, text)
