"""A person's digest without some records is the digest of the records left."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rules.view import digest_of, digest_without

records = st.lists(st.tuples(st.sampled_from(["2023-01-01", "2023-05-02", "2024-02-29", "2024-12-31"]),
                             st.integers(1, 10_000), st.integers(0, 20).map(lambda q: q / 4), st.booleans()),
                   max_size=12, unique_by=lambda r: r[1])


@given(records, st.data())
def test_a_digest_without_records_is_the_digest_of_the_rest(drawn, data):
    rows = [(day, seq, f"t{seq}", hours, off_job, "p1", None, None, "shanghai", "2024-01-01T00:00:00.000000+00:00")
            for day, seq, hours, off_job in drawn]
    gone = set(data.draw(st.lists(st.sampled_from([r[2] for r in rows] + ["other"]), max_size=4)))
    digest = digest_of(rows)
    got = digest_without(digest, gone)
    assert got == digest_of([r for r in rows if r[2] not in gone])
    assert type(got.off_job) is bytes and isinstance(got.dates, list)
    if not gone & set(digest.ids):
        assert got is digest  # (nothing retracted: the same digest, not a copy)
