"""A creation state written from its template (adapters.store.creation_template, used by
Store.creation) against the transcoder's encoding of the whole state.

Loading stores most new aggregates from `Store.creation`; its bytes must be exactly those the
transcoder writes for {timestamp, originator_topic, *arguments*}, or every stored event, and so
the hash chain, would differ from the aggregate built the usual way."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from eventsourcing.application import Application
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.record import _creation
from adapters.store import Transcoder, creation_template
from domain.facts import person_fact

_TEXTS = st.one_of(st.text(max_size=6), st.sampled_from(["王伟", 'a"b\\c', "\t x", "𠮷", "\u2028", "\x00"]))
_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), _TEXTS, st.uuids(),
                  st.decimals(allow_nan=False, allow_infinity=False),
                  st.datetimes(timezones=st.just(dt.timezone.utc)))
_VALUE = st.recursive(_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(_TEXTS, inner, max_size=3)), max_leaves=6)


def _transcoder() -> Transcoder:
    t = Transcoder()
    Application.register_transcodings(None, t)
    return t


def _whole(transcoder: Transcoder, topic: str, when: dt.datetime, kwargs: dict) -> bytes:
    return transcoder.encode({"timestamp": transcoder.transcoded(when), "originator_topic": topic, **kwargs})


@settings(max_examples=500, deadline=None)
@given(_TEXTS, st.dictionaries(_TEXTS.filter(lambda k: k != "key"), _VALUE, max_size=5),
       st.datetimes(timezones=st.just(dt.timezone.utc)), st.sampled_from(["domain.person:Person", 'a"b']))
@example("p-1", {"when": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "id": uuid.UUID(int=7),
                 "n": Decimal("1.50")}, dt.datetime(2026, 11, 24, 8, 0, 0, tzinfo=dt.timezone.utc), "x")
def test_a_state_from_the_template_is_the_transcoders_whole_state(key, rest, when, topic):
    transcoder = _transcoder()
    head, tail = creation_template(transcoder, topic)
    kwargs = {"key": key, **rest}
    assert head + when.isoformat().encode() + tail + transcoder.encode(kwargs)[1:] == \
        _whole(transcoder, topic, when, kwargs)


def test_a_person_registrations_state_from_the_template():
    transcoder = _transcoder()
    fact = person_fact({"id": "p-9", "name": "李娜", "unit": "u-1", "duties": ["type-evaluation"],
                        "email": "li@example.org"})
    _cls, kwargs = _creation(fact, "shanghai")
    head, tail = creation_template(transcoder, "domain.person:Person")
    # (a whole second too: its ISO text has no fraction, as the transcoder writes it then)
    for when in (dt.datetime(2026, 11, 24, 8, 0, 0, 5, tzinfo=dt.timezone.utc),
                 dt.datetime(2026, 11, 24, 8, 0, 0, tzinfo=dt.timezone.utc)):
        expected = _whole(transcoder, "domain.person:Person", when, kwargs)
        assert head + when.isoformat().encode() + tail + transcoder.encode(kwargs)[1:] == expected
        assert transcoder.decode(expected)["timestamp"] == when


def test_no_template_where_the_timestamp_is_not_its_iso_text():
    class Elsewhere(Transcoder):
        def transcoded(self, obj):
            return {"_type_": "datetime_epoch", "_data_": obj.timestamp()}
    assert creation_template(Elsewhere(), "domain.person:Person") is False
