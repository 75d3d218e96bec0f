"""The vocabulary of the record: which facts exist, which fields they carry, what they refer to.

This is the contract's facts-file vocabulary (shared/CONTRACT.md, `metrolex load`) as data. A raw
record (a mapping read from YAML, JSON, CSV or XLSX) becomes a `Fact` or a `FieldError` that
names the field and what is wrong. Pure: no I/O, no clock.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from bisect import bisect_right
import json
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from domain.person import DUTIES

JURISDICTIONS = ("shanghai", "jiangsu")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class FieldError(ValueError):
    """One field of one record is wrong; `field` names it."""

    def __init__(self, field_name: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass(frozen=True)
class Spec:
    """A field: its kind (date, text, int, hours, bool, duties, texts, unit, person, center, plan,
    event) and whether it must be present."""

    kind: str
    required: bool = False


COMMON = {"id": Spec("text"), "type": Spec("text", True), "date": Spec("date", True), "note": Spec("text")}

EVENT_TYPES: dict[str, dict[str, Spec]] = {
    "training-recorded": {"person": Spec("person", True), "hours": Spec("hours", True),
                          "off_job": Spec("bool", True), "course": Spec("text")},
    "event-retracted": {"retracts": Spec("event", True), "reason": Spec("text")},
    "comparison-organized": {"unit": Spec("unit", True), "subject": Spec("text")},
    "lead-lab-started": {"unit": Spec("unit", True)},
    "lead-lab-ended": {"unit": Spec("unit", True)},
    "person-duties-changed": {"person": Spec("person", True), "duties": Spec("duties", True)},
    "person-duties-ended": {"person": Spec("person", True)},
    "center-approved": {"center": Spec("center", True), "construction_years": Spec("int")},
    "center-major-event": {"center": Spec("center", True), "summary": Spec("text")},
    "center-major-event-notified": {"center": Spec("center", True), "refers_to": Spec("event")},
    "center-annual-report-filed": {"center": Spec("center", True), "year": Spec("int")},
    "exchange-activity-held": {"center": Spec("center", True), "title": Spec("text")},
    "rectification-ordered": {"center": Spec("center", True), "deadline": Spec("date", True),
                              "reason": Spec("text")},
    "rectification-failed": {"center": Spec("center", True), "refers_to": Spec("event")},
    "rectification-completed": {"center": Spec("center", True), "refers_to": Spec("event")},
    "center-acceptance-applied": {"center": Spec("center", True)},
    "center-accepted": {"center": Spec("center", True)},
    "center-revoked": {"center": Spec("center", True)},
    "task-reassigned": {"plan": Spec("plan", True), "task": Spec("int", True),
                        "leads": Spec("texts", True), "supporting": Spec("texts")},
    "task-milestone-set": {"plan": Spec("plan", True), "task": Spec("int", True),
                           "name": Spec("text", True), "due": Spec("date", True)},
    "task-progress-reported": {"plan": Spec("plan", True), "task": Spec("int", True),
                               "unit": Spec("text", True), "text": Spec("text", True),
                               "milestone": Spec("text")},
    "task-completed": {"plan": Spec("plan", True), "task": Spec("int", True), "unit": Spec("text")},
    "indicator-reported": {"indicator": Spec("text", True), "value": Spec("hours", True)},
    "plan-evaluated": {"evaluation": Spec("evaluation", True)},
}

REGISTRATIONS: dict[str, dict[str, Spec]] = {
    "units": {"id": Spec("text", True), "name": Spec("text", True), "kind": Spec("text", True),
              "lead_lab_since": Spec("date"), "supervisor": Spec("unit"), "jurisdiction": Spec("text"),
              "email": Spec("text"), "webhook": Spec("text")},
    "people": {"id": Spec("text", True), "name": Spec("text", True), "unit": Spec("unit", True),
               "duties": Spec("duties", True), "since": Spec("date"), "email": Spec("text")},
    "centers": {"id": Spec("text", True), "name": Spec("text", True), "host": Spec("unit", True),
                "email": Spec("text"), "webhook": Spec("text")},
}
REGISTRATION_TYPE = {"units": "unit-registered", "people": "person-registered", "centers": "center-registered"}
REFERENCE_KINDS = ("unit", "person", "center", "plan", "event")
# Which answer refers to which trigger (contract: refers_to, else the oldest unanswered).
ANSWERS = {"center-major-event-notified": "center-major-event",
           "rectification-failed": "rectification-ordered",
           "rectification-completed": "rectification-ordered"}


class _memo:
    """functools.cached_property without its lock (Python 3.11 takes one per first read, which
    loading pays for every fact): computed on first read, then held in the instance's dict,
    where later reads find it without calling anything. A fact is immutable, so a race can only
    compute the same value twice."""

    def __init__(self, func: Callable) -> None:
        self.func, self.name = func, func.__name__
        self.__doc__ = func.__doc__

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.func(instance)
        return value


@dataclass(frozen=True, init=False)
class Fact:
    """One statement of the record. `fields` holds everything but id and type, dates as ISO text."""

    id: str
    type: str
    fields: dict[str, Any] = field(default_factory=dict)

    def __init__(self, id: str, type: str, fields: dict[str, Any] | None = None) -> None:
        # what the frozen dataclass's own __init__ does, without its object.__setattr__ per
        # field (a load makes one Fact per record)
        held = self.__dict__
        held["id"], held["type"], held["fields"] = id, type, {} if fields is None else fields

    @property
    def date(self) -> str | None:
        return self.fields.get("date")

    @_memo
    def encoded(self) -> tuple[str, str]:
        """(payload, content hash), made once (after that a plain attribute: what a bulk load
        reads, for 100,000 records a file set, instead of the two properties below)."""
        return payload_and_hash(self.type, self.fields)

    @property
    def content_hash(self) -> str:
        return self.encoded[1]

    @property
    def payload(self) -> str:
        """The fields as canonical JSON (what the read model stores)."""
        return self.encoded[0]

    def references(self) -> list[tuple[str, str, str]]:
        """(field, kind, id) for every field that names something in the record."""
        return [r[:3] for r in self.reference_keys]

    @_memo
    def reference_keys(self) -> list[tuple[str, str, str, str]]:
        """(field, kind, id, the fact id it names) for every field that names something: an
        event by its own id, a unit, person, center or plan by its registration's ("person:p-1")."""
        fields = self.fields
        return [(name, kind, ref, str(ref) if kind == "event" else f"{kind}:{ref}")
                for name, kind in _reference_specs(self.type) if (ref := fields.get(name)) is not None]

    @property
    def subject(self) -> str | None:
        """The unit, person, center or plan the fact is about."""
        if self.type in ("unit-registered", "person-registered", "center-registered"):
            return self.fields["id"]
        for key in ("person", "center", "plan", "unit"):
            if key in self.fields and self.type in EVENT_TYPES and EVENT_TYPES[self.type].get(key):
                return self.fields[key]
        return None


_REFERENCE_SPECS: dict[str, list[tuple[str, str]]] = {}


def _reference_specs(fact_type: str) -> list[tuple[str, str]]:
    specs = _REFERENCE_SPECS.get(fact_type)
    if specs is None:
        all_specs = EVENT_TYPES.get(fact_type) or REGISTRATIONS.get(_registration_key(fact_type), {})
        specs = _REFERENCE_SPECS[fact_type] = [(name, spec.kind) for name, spec in all_specs.items()
                                               if spec.kind in REFERENCE_KINDS]
    return specs


def _registration_key(fact_type: str) -> str:
    return {v: k for k, v in REGISTRATION_TYPE.items()}.get(fact_type, "")


_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


class ReusedEncoder(threading.local):
    """`encoder.encode` for one json.JSONEncoder, without its per-call setup (JSONEncoder builds
    its C encoder anew for every call): one C encoder per thread (its circular-reference markers
    are its own), made with the encoder's settings, kept until a call fails (the markers may then
    hold stale entries). Where the C encoder is missing (or indents), the JSONEncoder itself.
    Equal to `encoder.encode` (tests/unit/test_facts_vocabulary.py, for the canonical encoder;
    tests/unit/test_transcoder.py, for the event store's)."""

    def __init__(self, encoder: json.JSONEncoder) -> None:
        self._json = encoder
        self._text = json.encoder.encode_basestring_ascii if encoder.ensure_ascii else json.encoder.encode_basestring
        self._encoder = self._make()

    def _make(self) -> Callable[[Any, int], Any] | None:
        make = getattr(json.encoder, "c_make_encoder", None)
        e = self._json
        if make is None or e.indent is not None:  # pragma: no cover - CPython has it; nothing indents
            return None
        return make({} if e.check_circular else None, e.default, self._text, e.indent, e.key_separator,
                    e.item_separator, e.sort_keys, e.skipkeys, e.allow_nan)

    def __call__(self, value: Any) -> str:
        if type(value) is str:  # (what JSONEncoder.encode does for a str)
            return self._text(value)
        encoder = self._encoder
        if encoder is None:  # pragma: no cover
            return self._json.encode(value)
        try:
            return "".join(encoder(value, 0))
        except BaseException:
            self._encoder = self._make()
            raise


_canonical = ReusedEncoder(_CANONICAL)


def canonical_json(value: Any) -> str:
    return _canonical(value)


def content_hash(fact_type: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"type": fact_type, **fields}).encode()).hexdigest()


_TYPE_ITEMS: dict[str, str] = {}


def _type_item(fact_type: str) -> str:
    item = ',"type":' + _canonical(fact_type) + "}"
    if len(_TYPE_ITEMS) < 1000:  # (types are few; a bad file's unknown types are refused before)
        _TYPE_ITEMS[fact_type] = item
    return item


def payload_and_hash(fact_type: str, fields: dict[str, Any]) -> tuple[str, str]:
    """(canonical JSON of the fields, content hash), with one encoding where it can: when every
    key sorts before "type", the hashed text is the payload with `"type":…` added last. Else the
    two are encoded apart (two calls of the C encoder cost less than finding the one in the other).
    Equal to (canonical_json(fields), content_hash(...)) always (tests/unit/test_facts_vocabulary.py)."""
    top = max(fields) if fields and "type" not in fields else None
    if type(top) is str and top < "type":
        # (most facts: training records, …) every key sorts before "type", which the hashed
        # text therefore adds last: one encoding, of the payload
        payload = _canonical(fields)
        hashed = payload[:-1] + (_TYPE_ITEMS.get(fact_type) or _type_item(fact_type))
        return payload, hashlib.sha256(hashed.encode()).hexdigest()
    if type(top) is str:
        # (registrations, events with a unit or a year …) some key sorts after "type": the
        # top-level items, each encoded once, joined in key order (what the sorting encoder
        # writes), with `"type":…` put in its place for the hashed text (a person: 5.1 -> 4.0 us)
        keys = sorted(fields)
        items = [_encode_text(k) + ":" + _canonical(fields[k]) for k in keys]
        payload = "{" + ",".join(items) + "}"
        items.insert(bisect_right(keys, "type"), '"type":' + _canonical(fact_type))
        return payload, hashlib.sha256(("{" + ",".join(items) + "}").encode()).hexdigest()
    return _canonical(fields), hashlib.sha256(_canonical({"type": fact_type, **fields}).encode()).hexdigest()


def parse_date(value: Any, name: str) -> str:
    if isinstance(value, dt.datetime):
        raise FieldError(name, f"expected a date YYYY-MM-DD, got a timestamp {value.isoformat()}")
    if isinstance(value, dt.date):
        return parse_date(value.isoformat(), name)
    if isinstance(value, str) and _DATE.match(value.strip()):
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise FieldError(name, f"{value!r} is not a real calendar date") from None
        if not YEARS[0] <= day.year <= YEARS[1]:
            raise FieldError(name, f"{value!r} is outside the years {YEARS[0]}–{YEARS[1]}")
        return day.isoformat()
    raise FieldError(name, f"expected a date YYYY-MM-DD, got {value!r}")


# One training lasts at most a (leap) year, and no reported quantity is astronomical: so that no
# sum of them overflows to infinity, which JSON cannot carry (every judgment of the subject, and
# /judgments for everyone, would fail to answer).
MAX_CLASS_HOURS = 366 * 24
INT_RANGES = {"construction_years": (1, 20), "year": (1900, 2999), "task": (1, 100_000)}
YEARS = (1900, 2999)  # dates outside are typing errors, and date arithmetic must not overflow
MAX_QUANTITY = 1e15


_TEXT_KINDS = frozenset(("text",) + REFERENCE_KINDS)


def _coerce(name: str, spec: Spec, value: Any) -> Any:
    """One field's value, normalized, or a FieldError saying what is wrong (the common values
    are accepted before this, inline, by `_check_fields`)."""
    kind = spec.kind
    if kind == "date":
        return parse_date(value, name)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise FieldError(name, f"expected true or false, got {value!r}")
    if kind == "hours":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise FieldError(name, f"expected a number{' of class hours' if name == 'hours' else ''}, got {value!r}")
        if value < 0:
            raise FieldError(name, f"{name} cannot be negative ({value})")
        if name == "hours" and value > MAX_CLASS_HOURS:
            raise FieldError(name, f"{value} class hours in one training is more than a year has "
                                   f"(at most {MAX_CLASS_HOURS})")
        if value > MAX_QUANTITY:
            raise FieldError(name, f"{value} is too large (at most {MAX_QUANTITY:.0e})")
        return float(value) if not float(value).is_integer() else int(value)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(name, f"expected a whole number, got {value!r}")
        if value < 1:
            raise FieldError(name, f"expected a positive number, got {value}")
        low, high = INT_RANGES.get(name, (1, 100_000))
        if not low <= value <= high:
            raise FieldError(name, f"expected a number from {low} to {high}, got {value}")
        return value
    if kind == "duties":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise FieldError(name, f"expected a list of duties, got {value!r}")
        bad = [v for v in value if v not in DUTIES]
        if bad:
            raise FieldError(name, f"unknown duty {bad[0]!r} (known: {', '.join(DUTIES)})")
        return list(value)
    if kind == "evaluation":
        if value not in ("mid-term", "final"):
            raise FieldError(name, f"expected mid-term or final, got {value!r}")
        return value
    if kind == "texts":
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise FieldError(name, f"expected a list of names, got {value!r}")
        return [v.strip() for v in value]
    # text and references
    if isinstance(value, bool) or not isinstance(value, (str, int)) or (isinstance(value, str) and not value.strip()):
        raise FieldError(name, f"expected text, got {value!r}")
    return str(value).strip()


_PLANS: dict[int, tuple[dict[str, Spec], tuple]] = {}  # id(specs) → (specs, its fields as a plan)


def _plan(specs: dict[str, Spec]) -> tuple:
    """(name, required, kind, spec) per field, with the kinds whose common values `_check_fields`
    accepts inline (text and references as text, bool, date, hours): made once per specs."""
    held = _PLANS.get(id(specs))
    if held is None or held[0] is not specs:
        kinds = {k: ("text" if k in _TEXT_KINDS else k) for k in {s.kind for s in specs.values()}}
        held = _PLANS[id(specs)] = (specs, tuple((n, s.required, kinds[s.kind], s) for n, s in specs.items()))
    return held[1]


def _check_fields(raw: dict, specs: dict[str, Spec], what: str) -> dict[str, Any]:
    """The fields of one record, checked and normalized. The most common values (non-blank text,
    a bool, a valid date, whole class hours) are accepted inline; everything else goes through
    `_coerce`, which gives the same value or says what is wrong."""
    if not isinstance(raw, dict):
        raise FieldError(None, f"expected a mapping for {what}, got {type(raw).__name__}")
    if not specs.keys() >= raw.keys():
        unknown = [k for k in raw if k not in specs]
        raise FieldError(str(unknown[0]), f"unknown key for {what} (allowed: {', '.join(specs)})")
    out: dict[str, Any] = {}
    get = raw.get
    for name, required, kind, spec in _plan(specs):
        value = get(name)
        if value is None:
            if required:
                raise FieldError(name, f"missing (required for {what})")
            continue
        vt = type(value)
        if vt is str:
            if kind == "text":
                text = value.strip()
                if text:
                    out[name] = text
                    continue
            elif kind == "date" and _checked_date(value):  # (else _coerce says why)
                out[name] = value
                continue
        elif vt is bool:
            if kind == "bool":
                out[name] = value
                continue
        elif vt is int and kind == "hours" and 0 <= value <= (MAX_CLASS_HOURS if name == "hours" else MAX_QUANTITY):
            out[name] = value
            continue
        out[name] = _coerce(name, spec, value)
    return out


def parse_registration(section: str, raw: dict, jurisdiction: str) -> Fact:
    """A unit, person or center entry → its registration fact (id `unit:ID`, `person:ID` …)."""
    specs = REGISTRATIONS[section]
    fields = _check_fields(raw, specs, section[:-1] if section != "people" else "person")
    if section == "units":
        j = fields.setdefault("jurisdiction", jurisdiction)
        if j not in JURISDICTIONS:
            raise FieldError("jurisdiction", f"unknown jurisdiction {j!r} (known: {', '.join(JURISDICTIONS)})")
    fact_type = REGISTRATION_TYPE[section]
    return Fact(id=f"{fact_type.split('-')[0]}:{fields['id']}", type=fact_type, fields=fields)


_EVENT_SPECS: dict[str, dict[str, Spec]] = {}  # an event type's fields, the common ones first


def parse_event(raw: dict) -> tuple[str | None, str, dict[str, Any]]:
    """An event entry → (given id or None, type, fields). The caller derives missing ids."""
    if not isinstance(raw, dict):
        raise FieldError(None, f"expected a mapping for an event, got {type(raw).__name__}")
    fact_type = raw.get("type")
    if fact_type is None:
        raise FieldError("type", "missing (every event has a type)")
    if type(fact_type) is not str or fact_type not in EVENT_TYPES:  # (a list is no type, and no key)
        raise FieldError("type", f"unknown event type {fact_type!r}")
    specs = _EVENT_SPECS.get(fact_type) or _EVENT_SPECS.setdefault(fact_type, {**COMMON, **EVENT_TYPES[fact_type]})
    fields = _check_fields(raw, specs, f"a {fact_type} event")
    given_id = fields.pop("id", None)
    fields.pop("type")
    if fact_type == "center-annual-report-filed":
        fields.setdefault("year", int(fields["date"][:4]))
    return given_id, fact_type, fields


def derive_event_id(fact_type: str, fields: dict[str, Any], occurrence: int) -> str:
    """Id of an event given without one: from its content and its position among identical
    events of the same file (the second identical event gets `-1`, and so on)."""
    digest = content_hash(fact_type, fields)[:16]
    return f"{fact_type}-{digest}" + (f"-{occurrence}" if occurrence else "")


# -- training records, the bulk of every register: a direct path --------------------------------
_TRAINING_KEYS = frozenset(("id", "type", "date", "note", "person", "hours", "off_job", "course"))
_TRAINING_HASHED_TAIL = ',"type":"training-recorded"}'
_encode_text = json.encoder.encode_basestring  # a str as JSON text, as the canonical encoder writes it
_int_text = int.__repr__  # (what the JSON encoder writes for a whole number)


_YEAR_OF: dict[str, int] = {}  # a date's text → its year, once checked (see _checked_date)
_new_fact = object.__new__


def _made_fact(fact_id: str, fact_type: str, fields: dict[str, Any], payload: str, hashed: str,
               reference_keys: list[tuple[str, str, str, str]]) -> Fact:
    """A direct path's Fact: what Fact.__init__ does, with its memos (payload and the hash of
    `hashed`, the reference keys) filled in, in one update."""
    fact = _new_fact(Fact)
    fact.__dict__.update(id=fact_id, type=fact_type, fields=fields,
                         encoded=(payload, hashlib.sha256(hashed.encode()).hexdigest()),
                         reference_keys=reference_keys)
    return fact


def _nonblank_text(value: Any) -> str | None:
    """`value` stripped, when it is text that is not blank (what `_check_fields` accepts inline for
    text and references); else None."""
    return (value.strip() or None) if type(value) is str else None


def _checked_date(value: Any) -> bool:
    """Whether `value` is a date `_check_fields` accepts inline (text YYYY-MM-DD, a real day in
    YEARS); each text's year is kept once checked (a register meets the same days again and again)."""
    if type(value) is not str:
        return False
    year = _YEAR_OF.get(value)
    if year is None:
        if len(value) != 10 or not _DATE.match(value):
            return False
        try:
            year = dt.date.fromisoformat(value).year
        except ValueError:
            return False
        if len(_YEAR_OF) < 100_000:
            _YEAR_OF[value] = year
    return YEARS[0] <= year <= YEARS[1]


def training_fact(raw: dict) -> Fact | None:
    """A training-recorded event entry → its Fact, with its payload and content hash already
    made; or None when the entry is not in the common form (an id given as text, a valid date,
    non-blank text, whole class hours, a bool), which `parse_event` then reads as usual — and
    refuses, where it is wrong.

    Equal to `Fact(*parse_event(raw))` with the payload and hash of `payload_and_hash` whenever it
    answers (tests/unit/test_training_fast_path.py, with hypothesis): the same checks as
    `_check_fields`' inline ones, unrolled, and the canonical JSON written field by field (keys in
    sorted order: course, date, hours, note, off_job, person)."""
    if not _TRAINING_KEYS.issuperset(raw):
        return None
    get = raw.get
    given, person = _nonblank_text(get("id")), _nonblank_text(get("person"))
    date, hours, off_job = get("date"), get("hours"), get("off_job")
    if given is None or person is None or type(off_job) is not bool or not _checked_date(date) \
            or type(hours) is not int or not 0 <= hours <= MAX_CLASS_HOURS:
        return None
    note, course = get("note"), get("course")  # (optional; given, non-blank text)
    if note is not None and (note := _nonblank_text(note)) is None:
        return None
    if course is not None and (course := _nonblank_text(course)) is None:
        return None
    fields: dict[str, Any] = {"date": date}  # (in _check_fields' order: date, note, person, hours, …)
    if note is not None:
        fields["note"] = note
    fields["person"], fields["hours"], fields["off_job"] = person, hours, off_job
    if course is not None:
        fields["course"] = course
    payload = ("{" + ("" if course is None else '"course":' + _encode_text(course) + ",")
               + '"date":' + _encode_text(date) + ',"hours":' + _int_text(hours)
               + ("" if note is None else ',"note":' + _encode_text(note))
               + (',"off_job":true,"person":' if off_job else ',"off_job":false,"person":') + _encode_text(person) + "}")
    return _made_fact(given, "training-recorded", fields, payload, payload[:-1] + _TRAINING_HASHED_TAIL,
                      [("person", "person", person, "person:" + person)])


# -- person registrations, the bulk of a register of people: a direct path -------------------------
_PERSON_KEYS = frozenset(("id", "name", "unit", "duties", "since", "email"))
_DUTY_TEXTS = {duty: _encode_text(duty) for duty in DUTIES}  # a known duty → its JSON text
_PERSON_HASHED_TYPE = ',"type":"person-registered"'


def person_fact(raw: Any) -> Fact | None:
    """A `people` entry → its person-registered Fact, with its payload and content hash already
    made; or None when the entry is not in the common form (texts, known duties as a list of
    texts, a valid date), which `parse_registration` then reads as usual — and refuses, where it
    is wrong.

    Equal to `parse_registration("people", raw, …)` with the payload and hash of
    `payload_and_hash` whenever it answers (tests/unit/test_training_fast_path.py, with
    hypothesis): the canonical JSON written field by field (keys in sorted order: duties, email,
    id, name, since, unit; the hashed text has "type" before "unit")."""
    if type(raw) is not dict or not _PERSON_KEYS.issuperset(raw):
        return None
    get = raw.get
    given, name, unit = _nonblank_text(get("id")), _nonblank_text(get("name")), _nonblank_text(get("unit"))
    duties = get("duties")
    if given is None or name is None or unit is None or type(duties) is not list:
        return None
    duty_texts = []
    for duty in duties:
        text = _DUTY_TEXTS.get(duty) if type(duty) is str else None
        if text is None:
            return None
        duty_texts.append(text)
    since, email = get("since"), get("email")
    if since is not None and not _checked_date(since):
        return None
    if email is not None and (email := _nonblank_text(email)) is None:
        return None
    fields: dict[str, Any] = {"id": given, "name": name, "unit": unit, "duties": list(duties)}  # (_check_fields' order)
    if since is not None:
        fields["since"] = since
    if email is not None:
        fields["email"] = email
    head = ('{"duties":[' + ",".join(duty_texts) + "]" + ("" if email is None else ',"email":' + _encode_text(email))
            + ',"id":' + _encode_text(given) + ',"name":' + _encode_text(name)
            + ("" if since is None else ',"since":' + _encode_text(since)))
    tail = ',"unit":' + _encode_text(unit) + "}"
    return _made_fact("person:" + given, "person-registered", fields, head + tail, head + _PERSON_HASHED_TYPE + tail,
                      [("unit", "unit", unit, "unit:" + unit)])
