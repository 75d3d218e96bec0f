"""Golden cases per rule (tests/golden/*.yaml), named as sentences a lawyer could read.

Each case is a facts file in the contract's format, an as-of date, and the judgments expected;
both the reference engine and durable_rules must produce them."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from adapters.facts_file import read_facts_file
from adapters.record import rows_in_memory
from rules.calendar import WorkdayCalendar
from rules.catalogue import Catalogue
from rules.evaluate import evaluate
from rules.judgment import ReferenceEngine

GOLDEN = Path(__file__).parents[1] / "golden"
CATALOGUE = Catalogue.bundled()
CALENDAR = WorkdayCalendar.bundled()


def _cases():
    y = YAML(typ="safe")
    for path in sorted(GOLDEN.glob("*.yaml")):
        doc = y.load(path.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            yield pytest.param(doc["rule"], case, id=f"{path.stem}: {case['name']}")


def _rows(tmp_path: Path, facts: dict) -> list[dict]:
    import json
    f = tmp_path / "facts.json"
    f.write_text(json.dumps(facts, ensure_ascii=False, default=str), encoding="utf-8")
    return rows_in_memory(read_facts_file(f))


def _matches(judgment: dict, expected: dict) -> bool:
    return all(str(judgment.get(k)) == str(v) if v is not None else judgment.get(k) is None
               for k, v in expected.items())


@pytest.mark.parametrize("rule,case", list(_cases()))
def test_golden_case(rule, case, tmp_path):
    rows = _rows(tmp_path, case["facts"])
    as_of = dt.date.fromisoformat(str(case["as_of"]))
    rules = CATALOGUE.in_force(as_of, {rule})
    got = [j.to_json() for j in evaluate(rows, as_of, rules, CALENDAR, ReferenceEngine())]
    for expected in case.get("expect", []):
        expected = {k: (str(v) if isinstance(v, (dt.date, int)) and k != "rule_version" else v)
                    for k, v in expected.items()}
        assert any(_matches(j, expected) for j in got), (
            f"expected {expected}\n got: " + "\n      ".join(
                f"{j['subject']} {j['period']} due {j['due']} {j['status']} sat {j['satisfied_on']}"
                f"{' provisional' if j.get('provisional') else ''}" for j in got))
    for absent in case.get("expect_absent", []):
        absent = {k: str(v) for k, v in absent.items()}
        assert not any(_matches(j, absent) for j in got), f"did not expect a judgment matching {absent}"
    if "expect_count" in case:
        assert len(got) == case["expect_count"], [f"{j['subject']} {j['period']} {j['status']}" for j in got]
