"""The lake's count of distinct texts (lake/_distinct.c) against pyarrow's `count_distinct`."""

from __future__ import annotations

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sluice.lake.parquet import DICTIONARY_SAMPLE, dictionary_columns, distinct_texts
from sluice.warehouse import compiled

pytestmark = pytest.mark.skipif(compiled.distinct() is None, reason="_distinct.c is not built")

TEXTS = st.one_of(
    st.none(),
    st.sampled_from(["", "a", "b", "ab", "0123456789abcdef", "0123456789abcdeg", "é"]),
    st.text(max_size=20),
)


@given(st.lists(TEXTS, max_size=300), st.integers(0, 50), st.integers(0, 10), st.integers(0, 3))
def test_distinct_texts_counts_as_pyarrow_up_to_the_limit(
    texts: list[str | None], limit: int, skip: int, cuts: int
) -> None:
    array = pa.array(texts, pa.string()).slice(min(skip, len(texts)))  # an offset into buffers
    step = max(1, len(array) // (cuts + 1))
    chunks = [array.slice(i, step) for i in range(0, len(array), step)] or [array]
    values = pa.chunked_array(chunks, pa.string())
    expected = pc.count_distinct(values).as_py()
    got = distinct_texts(values, limit)
    assert got == expected if expected <= limit else got > limit


def test_the_columns_chosen_are_pyarrow_s(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = DICTIONARY_SAMPLE + 500
    table = pa.table(
        {
            "few": [f"v{i % 7}" for i in range(rows)],
            "ids": [f"id-{i}" for i in range(rows)],
            "edge": [f"e{i % 200}" if i % 2 else None for i in range(rows)],  # 200 of 500
            "over": [f"e{i % 201}" if i % 2 else None for i in range(rows)],
            "empty": [None] * rows,
            "number": list(range(rows)),
        }
    )
    chosen = dictionary_columns(table)
    monkeypatch.setenv(compiled.DISABLE_ENV, "1")
    assert dictionary_columns(table) == chosen == ["few", "edge"]
