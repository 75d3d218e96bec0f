"""The event store's transcoder (adapters.store.Transcoder) against eventsourcing's own.

It keeps one C encoder between calls; every stored event's bytes, and so the hash chain, must be
exactly what eventsourcing's JSONTranscoder writes for the same state."""
from __future__ import annotations

import datetime as dt
import threading
import uuid
from decimal import Decimal

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.store import Record, Transcoder


def _reference() -> JSONTranscoder:
    t = JSONTranscoder()
    Application.register_transcodings(None, t)  # (UUID, Decimal, datetime: as the application registers)
    return t


def _ours() -> Transcoder:
    t = Transcoder()
    Application.register_transcodings(None, t)
    return t


_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=6),
                  st.uuids(), st.decimals(allow_nan=False, allow_infinity=False),
                  st.datetimes(timezones=st.just(dt.timezone.utc)), st.sampled_from(["计量", "𠮷", "a\"b\\", "\u2028"]))
_STATE = st.dictionaries(st.text(max_size=5), st.recursive(
    _LEAF, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=8), max_size=6)


@settings(max_examples=500, deadline=None)
@given(_STATE)
def test_the_transcoder_writes_the_bytes_eventsourcing_writes(state):
    ours, reference = _ours(), _reference()
    assert ours.encode(state) == reference.encode(state)
    assert ours.decode(ours.encode(state)) == reference.decode(reference.encode(state))


def test_after_a_failed_encoding_the_transcoder_still_writes_the_same_bytes():
    ours, reference = _ours(), _reference()
    state = {"when": dt.datetime(2024, 1, 5, tzinfo=dt.timezone.utc), "what": [object()]}
    with pytest.raises(TranscodingNotRegisteredError):
        ours.encode(state)
    state["what"] = [uuid.UUID(int=7), Decimal("1.50")]
    assert ours.encode(state) == reference.encode(state)
    loop: list = [1]
    loop.append({"again": loop})
    with pytest.raises(ValueError):
        ours.encode({"l": loop})
    loop[1].pop("again")
    assert ours.encode({"l": loop}) == reference.encode({"l": loop}) == b'{"l":[1,{}]}'


def test_the_transcoder_in_several_threads_writes_the_same_bytes():
    ours, reference = _ours(), _reference()
    states = [{"n": i, "id": uuid.UUID(int=i), "items": [{"k": str(i)}] * 3} for i in range(300)]
    out: dict[int, list[bytes]] = {}

    def work(k: int) -> None:
        out[k] = [ours.encode(s) for s in states]
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    expected = [reference.encode(s) for s in states]
    assert all(v == expected for v in out.values()) and len(out) == 4


def test_the_record_application_uses_it():
    assert type(Record.construct_transcoder(Record.__new__(Record))) is Transcoder


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.datetimes(timezones=st.just(dt.timezone.utc)), st.uuids(),
                 st.decimals(allow_nan=False, allow_infinity=False)), _STATE)
def test_a_value_transcoded_before_encoding_is_written_and_read_as_the_value_itself(value, state):
    """Store.creation gives its timestamp already transcoded: the bytes must be those of the
    timestamp itself, and they must read back as it."""
    ours, reference = _ours(), _reference()
    given_as_is = {"timestamp": value, **state}
    given_transcoded = {"timestamp": ours.transcoded(value), **state}
    assert ours.encode(given_transcoded) == reference.encode(given_as_is)
    assert ours.decode(ours.encode(given_transcoded))["timestamp"] == value
