"""A person registration's creation state written as text (adapters.record.person_state and
adapters.store.creation_template) against the transcoder's encoding of the same arguments.

Loading stores most people from that text; its bytes must be exactly those the transcoder writes
for `_creation`'s arguments, or every stored event, and so the hash chain, would differ from the
aggregate built the usual way."""
from __future__ import annotations

import datetime as dt

from eventsourcing.application import Application
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.record import _creation, person_state
from adapters.store import Transcoder, creation_template
from domain.facts import FieldError, parse_registration, person_fact

_TEXTS = st.one_of(st.text(min_size=1, max_size=6),
                   st.sampled_from(["p-1", " p-2 ", "王伟", 'a"b\\c', "\t x", "𠮷", "\u2028", "\x00", "é"]))
_DUTY = st.sampled_from(["mandatory-verification", "type-evaluation", "other"])


def _transcoder() -> Transcoder:
    t = Transcoder()
    Application.register_transcodings(None, t)
    return t


@st.composite
def _people(draw) -> dict:
    raw = {"id": draw(_TEXTS), "name": draw(_TEXTS), "unit": draw(_TEXTS), "duties": draw(st.lists(_DUTY, max_size=3))}
    if draw(st.booleans()):
        raw["since"] = draw(st.sampled_from(["2019-03-01", "2024-02-29", "1999-12-31"]))
    if draw(st.booleans()):
        raw["email"] = draw(_TEXTS)
    return raw


@settings(max_examples=800, deadline=None)
@given(_people())
@example({"id": "p-1", "name": "王伟", "unit": "u-1", "duties": [], "email": "a@b.c"})
@example({"id": "p-1", "name": "王伟", "unit": "u-1", "duties": ["other", "other"], "since": "2019-03-01"})
def test_the_text_is_what_the_transcoder_writes_for_the_creation_arguments(raw):
    transcoder = _transcoder()
    facts = []
    try:
        facts.append(parse_registration("people", raw, "shanghai"))  # the general path
    except FieldError:
        assert person_fact(raw) is None
        return
    if (direct := person_fact(raw)) is not None:
        facts.append(direct)
    for fact in facts:
        cls, kwargs = _creation(fact, "shanghai")
        assert person_state(fact).encode() == transcoder.encode(kwargs)


def test_a_state_from_the_template_is_the_transcoders_whole_creation_state():
    transcoder = _transcoder()
    fact = person_fact({"id": "p-9", "name": "李娜", "unit": "u-1", "duties": ["type-evaluation"],
                        "email": "li@example.org"})
    _cls, kwargs = _creation(fact, "shanghai")
    head, tail = creation_template(transcoder, "domain.person:Person")
    # (a whole second too: its ISO text has no fraction, as the transcoder writes it then)
    for when in (dt.datetime(2026, 11, 24, 8, 0, 0, 5, tzinfo=dt.timezone.utc),
                 dt.datetime(2026, 11, 24, 8, 0, 0, tzinfo=dt.timezone.utc)):
        expected = transcoder.encode({"timestamp": transcoder.transcoded(when),
                                      "originator_topic": "domain.person:Person", **kwargs})
        assert (head + when.isoformat() + tail + person_state(fact)[1:]).encode() == expected
        assert transcoder.decode(expected)["timestamp"] == when


def test_no_template_where_the_timestamp_is_not_its_iso_text():
    class Elsewhere(Transcoder):
        def transcoded(self, obj):
            return {"_type_": "datetime_epoch", "_data_": obj.timestamp()}
    assert creation_template(Elsewhere(), "domain.person:Person") is False
