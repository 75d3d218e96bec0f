"""The facts vocabulary: every refusal names its field; ids are derived deterministically."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.facts_file import FileError, read_facts_file
from adapters.record import facts_of
from domain.facts import EVENT_TYPES, FieldError, derive_event_id, parse_event, parse_registration


def test_an_event_with_all_fields_becomes_a_fact():
    given, t, fields = parse_event({"id": "ev-1", "type": "training-recorded", "date": "2023-03-02",
                                    "person": "p-1", "hours": 8, "off_job": True})
    assert (given, t) == ("ev-1", "training-recorded")
    assert fields == {"date": "2023-03-02", "person": "p-1", "hours": 8, "off_job": True}


@pytest.mark.parametrize("raw,field,words", [
    ({"type": "no-such-type", "date": "2023-01-01"}, "type", "unknown event type"),
    ({"type": ["training-recorded"], "date": "2023-01-01"}, "type", "unknown event type"),  # (a list: no key)
    ({"type": {"a": 1}, "date": "2023-01-01"}, "type", "unknown event type"),
    ({"type": "training-recorded", "date": "2023-02-30", "person": "p", "hours": 1, "off_job": True}, "date", "not a real calendar date"),
    ({"type": "training-recorded", "date": "2023-1-5", "person": "p", "hours": 1, "off_job": True}, "date", "YYYY-MM-DD"),
    ({"type": "training-recorded", "date": "2023-01-05", "person": "p", "hours": -1, "off_job": True}, "hours", "negative"),
    ({"type": "training-recorded", "date": "2023-01-05", "person": "p", "hours": 1, "off_job": "yes"}, "off_job", "true or false"),
    ({"type": "training-recorded", "date": "2023-01-05", "person": "p", "hours": 1}, "off_job", "missing"),
    ({"type": "training-recorded", "date": "2023-01-05", "person": "p", "hours": 1, "off_job": True, "colour": "red"}, "colour", "unknown key"),
    ({"type": "person-duties-changed", "date": "2023-01-05", "person": "p", "duties": ["juggling"]}, "duties", "unknown duty"),
    ({"type": "center-approved", "date": "2023-01-05", "center": "c", "construction_years": 0}, "construction_years", "positive"),
])
def test_a_bad_event_is_refused_naming_the_field(raw, field, words):
    with pytest.raises(FieldError) as err:
        parse_event(raw)
    assert err.value.field == field
    assert words in err.value.message


def test_registrations_get_prefixed_ids_and_the_file_jurisdiction():
    f = parse_registration("units", {"id": "u1", "name": "单位", "kind": "institute"}, "jiangsu")
    assert f.id == "unit:u1" and f.fields["jurisdiction"] == "jiangsu"
    with pytest.raises(FieldError):
        parse_registration("units", {"id": "u1", "name": "单位", "kind": "institute", "jurisdiction": "mars"}, "shanghai")


def test_derived_ids_depend_on_content_and_position_among_identical_events():
    fields = {"date": "2023-01-01", "unit": "u1"}
    a0 = derive_event_id("comparison-organized", fields, 0)
    a1 = derive_event_id("comparison-organized", fields, 1)
    b0 = derive_event_id("comparison-organized", {"date": "2023-01-02", "unit": "u1"}, 0)
    assert len({a0, a1, b0}) == 3
    assert a0 == derive_event_id("comparison-organized", dict(fields), 0)


def test_yaml_1_2_yes_is_not_a_boolean(tmp_path):
    p = tmp_path / "f.yaml"
    p.write_text("events:\n  - {type: training-recorded, date: 2023-01-05, person: p, hours: 1, off_job: yes}\n")
    with pytest.raises(FileError) as err:
        facts_of(read_facts_file(p))
    assert err.value.line == 2 and err.value.field == "off_job"


def test_two_identical_events_without_ids_are_two_facts(tmp_path):
    p = tmp_path / "f.yaml"
    p.write_text("events:\n"
                 "  - {type: comparison-organized, date: 2023-06-10, unit: u1}\n"
                 "  - {type: comparison-organized, date: 2023-06-10, unit: u1}\n")
    ids = [loc.fact.id for loc in facts_of(read_facts_file(p))]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_the_same_id_twice_in_a_file_with_other_content_is_refused(tmp_path):
    p = tmp_path / "f.yaml"
    p.write_text("events:\n"
                 "  - {id: e1, type: comparison-organized, date: 2023-06-10, unit: u1}\n"
                 "  - {id: e1, type: comparison-organized, date: 2023-06-11, unit: u1}\n")
    with pytest.raises(FileError) as err:
        facts_of(read_facts_file(p))
    assert err.value.line == 3


@pytest.mark.parametrize("text,line", [
    ("events: [\n  {type: x\n", 3),
    ("units:\n  - {id: a, name: b, kind: c}\n bad: indentation\n", 3),
])
def test_broken_yaml_names_a_line(tmp_path, text, line):
    p = tmp_path / "f.yaml"
    p.write_text(text)
    with pytest.raises(FileError) as err:
        read_facts_file(p)
    assert "broken YAML" in err.value.message
    assert err.value.line is not None


def test_csv_register_rows_become_training_events(tmp_path):
    p = tmp_path / "register.csv"
    p.write_text("person,date,hours,off-job,course\np-1,2023-03-02,8,是,计量法规\np-1,2023-04-02,4.5,false,\n",
                 encoding="utf-8")
    facts = [loc.fact for loc in facts_of(read_facts_file(p))]
    assert [f.fields["hours"] for f in facts] == [8, 4.5]
    assert [f.fields["off_job"] for f in facts] == [True, False]


def test_a_bad_csv_row_names_its_row_and_field(tmp_path):
    p = tmp_path / "register.csv"
    p.write_text("person,date,hours,off-job\np-1,2023-03-02,8,true\np-1,2023-03-40,8,true\n", encoding="utf-8")
    with pytest.raises(FileError) as err:
        facts_of(read_facts_file(p))
    assert err.value.line == 3 and err.value.field == "date"


def test_xlsx_register(tmp_path):
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.append(["person", "date", "hours", "off-job", "course"])
    ws.append(["p-1", "2023-03-02", 8, True, "培训"])
    ws.append(["p-2", "2023-03-03", 2, False, None])
    p = tmp_path / "register.xlsx"
    wb.save(p)
    facts = [loc.fact for loc in facts_of(read_facts_file(p))]
    assert [(f.fields["person"], f.fields["off_job"]) for f in facts] == [("p-1", True), ("p-2", False)]


@pytest.mark.parametrize("raw,field", [
    ({"type": "training-recorded", "date": "2023-01-05", "person": "p", "hours": 1.5e308, "off_job": True}, "hours"),
    ({"type": "center-approved", "date": "2023-01-05", "center": "c", "construction_years": 10 ** 20}, "construction_years"),
    ({"type": "center-annual-report-filed", "date": "2023-01-05", "center": "c", "year": 100000}, "year"),
    ({"type": "comparison-organized", "date": "9999-12-31", "unit": "u"}, "date"),
])
def test_values_that_would_overflow_later_arithmetic_are_refused(raw, field):
    with pytest.raises(FieldError) as err:
        parse_event(raw)
    assert err.value.field == field


def test_a_character_beyond_the_basic_plane_escaped_in_json_is_one_character(tmp_path):
    p = tmp_path / "f.json"
    p.write_text('{"units": [{"id": "u1", "name": "\\ud842\\udfb7\\u660e", "kind": "other"}]}', encoding="utf-8")
    [loc] = facts_of(read_facts_file(p))
    assert loc.fact.fields["name"] == "𠮷明" and loc.fact.content_hash
    p.write_text('{"units": [{"id": "u1", "name": "\\ud842", "kind": "other"}]}', encoding="utf-8")
    with pytest.raises(FileError):
        read_facts_file(p)


_KEYS = st.sampled_from(["course", "date", "hours", "note", "person", "task", "text", "ty", "typ", "typed", "type ", "type",
                         "tz", "unit", "year", "Z", "_", "单位", "a\"b", ""])
_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=8))
_VALUES = st.recursive(_LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(_KEYS, inner, max_size=3)), max_leaves=6)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["training-recorded", "task-progress-reported", "center-approved", "x"]),
       st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_the_payload_and_the_content_hash_are_those_of_the_canonical_encodings(fact_type, fields):
    # payload_and_hash encodes once where it can (every key before "type"), or each top-level
    # item once (some key after it); what it returns must be exactly the two canonical
    # encodings, or every stored hash would change
    from domain.facts import canonical_json, content_hash, payload_and_hash
    assert payload_and_hash(fact_type, fields) == (canonical_json(fields), content_hash(fact_type, fields))


_REFERENCE_JSON = __import__("json").JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@settings(max_examples=300, deadline=None)
@given(st.one_of(_VALUES, st.floats(allow_nan=False), st.text(max_size=8)))
def test_canonical_json_is_the_library_encoders_text(value):
    # canonical_json keeps one C encoder instead of a JSONEncoder call's setup: same text always
    from domain.facts import canonical_json
    assert canonical_json(value) == _REFERENCE_JSON.encode(value)


def test_canonical_json_after_a_failed_encoding_is_still_the_library_encoders_text():
    # a failure part-way leaves the encoder's circular-reference marks on the containers it was
    # in: the same containers, once fixed, must still encode (a fresh encoder is made)
    from domain.facts import canonical_json
    loop: list = [1]
    loop.append({"again": loop})
    with pytest.raises(ValueError):
        canonical_json(loop)
    loop[1].pop("again")
    assert canonical_json(loop) == _REFERENCE_JSON.encode(loop) == '[1,{}]'
    record = {"who": "p-1", "when": object()}
    with pytest.raises(TypeError):
        canonical_json([record])
    record["when"] = "2024-01-05"
    assert canonical_json({"r": record}) == _REFERENCE_JSON.encode({"r": record})
    assert canonical_json({"n": float("nan")}) == _REFERENCE_JSON.encode({"n": float("nan")}) == '{"n":NaN}'


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(EVENT_TYPES)),
       st.dictionaries(st.sampled_from(["date", "person", "hours", "off_job", "course", "note", "center", "unit",
                                        "task", "plan", "year", "deadline", "due", "construction_years", "value",
                                        "indicator", "refers_to"]),
                       st.one_of(st.none(), st.booleans(), st.integers(-5, 10**16), st.floats(allow_nan=True),
                                 st.sampled_from(["2024-02-29", "2023-02-29", "0999-01-01", "2024-1-05", " x ", "",
                                                  "  ", "p-1", "2999-12-31"]))))
def test_the_inline_checks_accept_exactly_what_coerce_accepts(fact_type, raw):
    # _check_fields accepts common values inline; each field must come out as _coerce makes it,
    # and a value _coerce refuses must be refused with the same field and message
    from domain.facts import COMMON, _check_fields, _coerce
    specs = {**COMMON, **EVENT_TYPES[fact_type]}
    raw = {k: v for k, v in raw.items() if k in specs}
    expected, refusal = {}, None
    for name, spec in specs.items():
        if raw.get(name) is None:
            if spec.required and refusal is None:
                refusal = (name, f"missing (required for it)")
            continue
        try:
            expected[name] = _coerce(name, spec, raw[name])
        except FieldError as exc:
            refusal = refusal or (name, exc.message)
    try:
        got = _check_fields(raw, specs, "it")
    except FieldError as exc:
        assert refusal == (exc.field, exc.message)
    else:
        assert refusal is None
        assert got == expected and [type(v) for v in got.values()] == [type(v) for v in expected.values()]


def test_canonical_json_in_several_threads_is_the_library_encoders_text():
    # each thread has its own encoder: a shared one would share its circular-reference marks, and
    # a thread encoding an object another thread is inside of would be told it is circular. (The
    # mapping below lets other threads run mid-encoding, as any mapping whose items() is Python.)
    import time
    from concurrent.futures import ThreadPoolExecutor

    from domain.facts import canonical_json

    class Slow(dict):
        def items(self):
            time.sleep(0.001)
            return super().items()
    shared = Slow(people=[Slow(id=f"p{i}", hours=i / 4) for i in range(5)])
    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(lambda _: canonical_json(shared), range(16)))
    assert set(texts) == {_REFERENCE_JSON.encode(shared)}


def test_a_reference_names_the_fact_id_of_what_it_refers_to():
    """Loading looks a reference up by the fact id it names (Fact.reference_keys): a unit, person
    or center by its registration's id, a plan by its publication's, an event by its own."""
    from domain.facts import Fact
    unit = parse_registration("units", {"id": "u1", "name": "单位", "kind": "institute"}, "shanghai")
    person = parse_registration("people", {"id": "p1", "name": "人", "unit": "u1", "duties": []}, "shanghai")
    center = parse_registration("centers", {"id": "c1", "name": "中心", "host": "u1"}, "shanghai")
    assert [k for *_, k in person.reference_keys] == [unit.id]
    assert [k for *_, k in center.reference_keys] == [unit.id]
    training = Fact(*parse_event({"id": "t1", "type": "training-recorded", "date": "2023-01-05", "person": "p1",
                                  "hours": 1, "off_job": True}))
    assert training.reference_keys == [("person", "person", "p1", person.id)]
    notified = Fact(*parse_event({"type": "center-major-event-notified", "date": "2023-01-06", "center": "c1",
                                  "refers_to": "me-1"}))
    assert sorted(k for *_, k in notified.reference_keys) == sorted([center.id, "me-1"])
    task = Fact(*parse_event({"type": "task-completed", "date": "2023-01-06", "plan": "shanghai-2023", "task": 1}))
    assert [k for *_, k in task.reference_keys] == ["plan:shanghai-2023"]
    assert [r[:3] for r in training.reference_keys] == training.references()
