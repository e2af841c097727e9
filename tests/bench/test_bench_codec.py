"""The codec benchmark compares like with like: its three decoders read the same rows
from the same GETBULK response and its three encoders write the same request bytes."""

from __future__ import annotations

from bench.bench_codec import (
    COLUMNS,
    REPS,
    check_codecs,
    decode_fast,
    decode_pysnmp,
    encode_fast,
    encode_pysnmp,
    response_message,
)


def test_the_compared_codecs_agree() -> None:
    check_codecs()  # raises when any side differs
    data = response_message()
    rows = decode_fast(data)
    assert [len(col) for col in rows] == [REPS] * len(COLUMNS)
    ref = decode_pysnmp(data)
    assert len(ref) == 2 * REPS and ref[0][0] == COLUMNS[0] + (1000,)
    assert rows[1][0][2] == ref[1][1] == 17  # row 0's state: forwardingDisabled(17)
    assert encode_fast(99) == encode_pysnmp(99) != encode_fast(98)
