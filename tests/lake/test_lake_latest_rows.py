"""The lake's check finds each profile id's latest row as a mask over the stage's columns."""

from __future__ import annotations

import pyarrow as pa  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

from sluice.lake.columnar_checks import _latest_rows

PIDS = st.lists(st.one_of(st.none(), st.sampled_from(["", "u1", "u2", "u3", "é"])), max_size=40)


@given(PIDS, st.randoms(use_true_random=False), st.integers(1, 4))
def test_latest_rows_marks_the_highest_seq_of_each_profile_id(pids, rnd, pieces) -> None:
    seqs = list(range(1, len(pids) + 1))
    rnd.shuffle(seqs)  # a stage's rows need not be in seq order (irregular events come last)
    cut = sorted(rnd.sample(range(len(pids) + 1), min(pieces, len(pids) + 1)))
    chunks = [(a, b) for a, b in zip([0, *cut], [*cut, len(pids)], strict=True) if b > a]
    pid = pa.chunked_array([pa.array(pids[a:b], pa.string()) for a, b in chunks], pa.string())
    seq = pa.chunked_array([pa.array(seqs[a:b], pa.int64()) for a, b in chunks], pa.int64())
    best: dict[str, int] = {}
    for p, s in zip(pids, seqs, strict=True):
        if p:
            best[p] = max(best.get(p, 0), s)
    expected = [bool(p) and best[p] == s for p, s in zip(pids, seqs, strict=True)]
    assert _latest_rows(pid, seq).to_pylist() == expected
