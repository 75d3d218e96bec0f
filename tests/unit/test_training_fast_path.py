"""A training record's direct path (`domain.facts.training_fact`) against the general one; and a
person registration's (`domain.facts.person_fact`), below.

Loading reads most records through the direct path; whenever it answers, its fact must be the one
`parse_event` and `Fact` make — same id, fields (values, their types, their order), payload,
content hash and references — or every stored hash would change. Where it does not answer, the
general path decides (and refuses what is wrong, with its own message)."""
from __future__ import annotations

import hashlib
import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from domain.facts import Fact, FieldError, canonical_json, content_hash, parse_event, training_fact

_TEXTS = st.one_of(st.text(max_size=6), st.sampled_from(["p-1", " p-2 ", "计量基础", "a\"b\\c", "\t", "𠮷", "\u2028"]))
_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-3, 10_000), st.floats(allow_nan=True), _TEXTS,
                   st.sampled_from(["2024-02-29", "2023-02-29", "0999-01-01", "2024-1-05", " 2024-01-05",
                                    "2999-12-31", "٢٠٢٤-٠١-٠٥", "2024-01-05"]),
                   st.lists(st.integers(), max_size=2))
_KEYS = ["id", "type", "date", "person", "hours", "off_job", "course", "note", "unit", "Hours"]
_COMMON = {"id": "tr-1", "type": "training-recorded", "date": "2024-01-05", "person": "p-1", "hours": 8,
           "off_job": True}


def _general(raw: dict):
    given_id, fact_type, fields = parse_event(raw)
    return Fact(given_id, fact_type, fields)


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(st.sampled_from(_KEYS), _VALUE, max_size=8), st.booleans())
@example({"course": "课程", "note": "补录"}, True)
@example({"hours": 8784}, True)
@example({"hours": 8785}, True)
@example({"hours": -1}, True)
@example({"hours": True}, True)
@example({"off_job": 1}, True)
@example({"date": "2024-02-30"}, True)
@example({"date": "0999-01-01"}, True)
@example({"person": "  "}, True)
@example({"note": ""}, True)
@example({"id": " tr-2 ", "person": " p-2 "}, True)
@example({"off_job": False, "course": "  x  "}, True)
def test_the_direct_path_makes_the_fact_the_general_path_makes(raw, mostly_valid):
    if mostly_valid:  # most drawn entries are then valid, and a few fields vary
        raw = {**_COMMON, **raw, "type": "training-recorded"}
    fast = training_fact(raw)
    try:
        slow = _general(raw)
    except FieldError:
        assert fast is None  # the direct path never accepts what the general one refuses
        return
    if fast is None:  # not the common form (a number as id, fractional hours …): the general path's
        return
    assert slow.type == "training-recorded"
    assert (fast.id, fast.type) == (slow.id, slow.type)
    assert list(fast.fields.items()) == list(slow.fields.items())
    assert [type(v) for v in fast.fields.values()] == [type(v) for v in slow.fields.values()]
    assert fast.payload == slow.payload == canonical_json(slow.fields)
    assert fast.content_hash == slow.content_hash == content_hash("training-recorded", slow.fields)
    assert fast.references() == slow.references()
    assert fast.reference_keys == slow.reference_keys


def test_the_direct_path_answers_for_the_common_form_and_its_hash_is_the_canonical_one():
    raw = {**_COMMON, "course": "计量基础知识", "note": "补录"}
    fact = training_fact(raw)
    assert fact is not None  # (the property test above would pass if it never answered)
    hashed = json.dumps({"type": "training-recorded", **fact.fields}, ensure_ascii=False, sort_keys=True,
                        separators=(",", ":"))
    assert fact.content_hash == hashlib.sha256(hashed.encode()).hexdigest()
    assert fact.payload == ('{"course":"计量基础知识","date":"2024-01-05","hours":8,"note":"补录",'
                            '"off_job":true,"person":"p-1"}')
    # not the common form: the general path reads them
    assert training_fact({**_COMMON, "hours": 7.5}) is None
    assert training_fact({**_COMMON, "id": 17}) is None
    assert training_fact({k: v for k, v in _COMMON.items() if k != "id"}) is None


# -- a person registration's direct path (domain.facts.person_fact) against parse_registration ----
from domain.facts import parse_registration, payload_and_hash, person_fact  # noqa: E402

_PERSON_KEYS = ["id", "name", "unit", "duties", "since", "email", "Unit", "type"]
_DUTIES = st.lists(st.sampled_from(["mandatory-verification", "type-evaluation", "other", "Other", " other", 3]),
                   max_size=3)
_PERSON_COMMON = {"id": "p-1", "name": "张三", "unit": "u-1", "duties": ["type-evaluation"], "since": "2020-02-29"}


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(st.sampled_from(_PERSON_KEYS), st.one_of(_VALUE, _DUTIES), max_size=7), st.booleans())
@example({"duties": []}, True)
@example({"since": None, "email": "a@b"}, True)
@example({"email": "  "}, True)
@example({"duties": ("other",)}, True)
@example({"id": " p-2 ", "unit": " u-2 ", "name": "a\"b"}, True)
def test_the_person_path_makes_the_fact_the_general_path_makes(raw, mostly_valid):
    if mostly_valid:
        raw = {**_PERSON_COMMON, **raw}
    fast = person_fact(raw)
    try:
        slow = parse_registration("people", raw, "shanghai")
    except FieldError:
        assert fast is None  # the direct path never accepts what the general one refuses
        return
    if fast is None:
        return
    assert (fast.id, fast.type) == (slow.id, slow.type)
    assert list(fast.fields.items()) == list(slow.fields.items())
    assert [type(v) for v in fast.fields.values()] == [type(v) for v in slow.fields.values()]
    assert (fast.payload, fast.content_hash) == payload_and_hash(slow.type, slow.fields) \
        == (canonical_json(slow.fields), content_hash("person-registered", slow.fields))
    assert fast.reference_keys == slow.reference_keys


def test_the_person_path_answers_for_the_common_form():
    fact = person_fact({**_PERSON_COMMON, "email": "zs@example.org"})
    assert fact is not None  # (the property test above would pass if it never answered)
    assert fact.payload == ('{"duties":["type-evaluation"],"email":"zs@example.org","id":"p-1","name":"张三",'
                            '"since":"2020-02-29","unit":"u-1"}')
    assert person_fact({**_PERSON_COMMON, "duties": ["juggling"]}) is None
    assert person_fact({**_PERSON_COMMON, "id": 7}) is None
