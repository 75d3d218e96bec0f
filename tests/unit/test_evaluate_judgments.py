"""What `evaluate` hands back for each obligation instance: a judgment whose every field is the
instance's, its rule version's or its status (built in one pass, the explanation only when read)."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from rules.calendar import WorkdayCalendar
from rules.catalogue import Catalogue
from rules.evaluate import derive_instances, evaluate, explain
from rules.judgment import Judgment, judge
from tests.unit.test_golden_cases import _cases, _rows

CATALOGUE = Catalogue.bundled()
CALENDAR = WorkdayCalendar.bundled()
FIELDS = [f.name for f in dataclasses.fields(Judgment)]


def _expected(rows: list[dict], as_of: dt.date, rules, lang: str) -> list[Judgment]:
    out = []
    for rule, inst in derive_instances(rows, as_of, rules, CALENDAR):
        status = judge(inst.case(as_of))
        out.append(Judgment(
            rule=rule.id, rule_version=rule.version, jurisdiction=inst.jurisdiction, subject=inst.subject,
            subject_kind=inst.subject_kind, period=inst.period, trigger=inst.trigger, due=inst.due.isoformat(),
            status=status, satisfied_on=inst.satisfied_on.isoformat() if inst.satisfied_on else None,
            provisional=inst.provisional, citation=rule.short_citation, explanation=explain(rule, inst, status, lang),
            title=rule.title, unit=inst.unit, facts=inst.facts, as_of=as_of.isoformat(),
            values={k: v for k, v in inst.values.items() if k != "name"}))
    return out


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_each_judgment_is_its_instance_its_rule_and_its_status(tmp_path, lang):
    """Every golden case, every rule in force that day, field by field."""
    rules_seen = set()
    for n, param in enumerate(_cases()):
        _, case = param.values
        (tmp_path / str(n)).mkdir()
        rows = _rows(tmp_path / str(n), case["facts"])
        as_of = dt.date.fromisoformat(str(case["as_of"]))
        rules = CATALOGUE.in_force(as_of)
        got = evaluate(rows, as_of, rules, CALENDAR, lang=lang)
        expected = _expected(rows, as_of, rules, lang)
        rules_seen.update(j.rule for j in got)

        def key(j):
            return j.rule, j.subject, j.period, j.trigger or ""
        got.sort(key=key)
        expected.sort(key=key)
        assert [[getattr(j, f) for f in FIELDS] for j in got] == [[getattr(j, f) for f in FIELDS] for j in expected]
    assert len(rules_seen) >= 7, rules_seen  # (the golden cases: the rules of centers, people and units)


def test_a_judgment_can_be_copied_with_a_change(tmp_path):
    """`dataclasses.replace` (as a test of tampering does) keeps every other field."""
    _, case = next(iter(_cases())).values
    as_of = dt.date.fromisoformat(str(case["as_of"]))
    j = evaluate(_rows(tmp_path, case["facts"]), as_of, CATALOGUE.in_force(as_of), CALENDAR)[0]
    changed = dataclasses.replace(j, status="breached")
    assert changed.status == "breached"
    assert [getattr(changed, f) for f in FIELDS if f != "status"] == [getattr(j, f) for f in FIELDS if f != "status"]
