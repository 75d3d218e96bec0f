"""Rule files: validated with line numbers; the bundled set cites its documents."""
import datetime as dt

import pytest

from rules.catalogue import Catalogue, RuleFileError, parse_rule

CONTRACT_RULES = {"training-hours", "comparison-cycle", "center-annual-report", "center-major-event",
                  "center-exchange-activities", "center-construction-period", "center-rectification"}


def test_the_bundled_catalogue_has_the_seven_contract_rules_with_citations():
    cat = Catalogue.bundled()
    ids = {v.id for v in cat.versions}
    assert CONTRACT_RULES <= ids
    for v in cat.versions:
        assert v.citation["document"] and v.citation["clause"] and v.citation["quote"]
        assert v.explanation["zh"] and v.explanation["en"]


def test_quotes_are_verbatim_from_the_seed_documents():
    from pathlib import Path
    seeds = Path(__file__).parents[3] / "shared" / "seeds"
    if not seeds.exists():
        pytest.skip(f"shared/seeds not found at {seeds}")
    text = "".join(p.read_text(encoding="utf-8") for p in seeds.glob("*.txt"))
    for v in Catalogue.bundled().versions:
        assert v.citation["quote"] in text, v.id


def test_versions_in_force_follow_effective_dates():
    cat = Catalogue.bundled()
    assert not any(v.id == "center-major-event" for v in cat.in_force(dt.date(2023, 5, 10)))
    assert any(v.id == "center-major-event" for v in cat.in_force(dt.date(2023, 5, 11)))


GOOD = """id: x
version: 1
jurisdiction: shanghai
title: t
citation: {document: d, clause: c, quote: q}
effective: {from: 2023-01-01}
binds: {subjects: center}
template: count-per-period
parameters: {fact: exchange-activity-held, threshold: 2, first_year_counts: true}
explanation: {zh: z, en: e}
"""


def test_a_good_rule_file_parses():
    v = parse_rule(GOOD)
    assert v.parameters["threshold"] == 2 and v.binds_from == dt.date(2023, 1, 1)


def test_every_error_is_reported_with_its_line():
    bad = GOOD.replace("threshold: 2", "threshold: two").replace("jurisdiction: shanghai", "jurisdiction: mars") \
              .replace("from: 2023-01-01", "from: 2023-13-01") + "colour: red\n"
    with pytest.raises(RuleFileError) as err:
        parse_rule(bad, "bad.yaml")
    messages = " ".join(msg for _, msg in err.value.errors)
    assert "threshold" in messages and "mars" in messages and "effective.from" in messages and "colour" in messages
    assert all(line is not None for line, _ in err.value.errors)
    assert (11, "unknown key 'colour'") in err.value.errors


def test_overlapping_versions_are_refused():
    a = parse_rule(GOOD)
    b = parse_rule(GOOD.replace("version: 1", "version: 2").replace("from: 2023-01-01", "from: 2024-01-01"))
    with pytest.raises(RuleFileError):
        Catalogue([a, b]).checked()
    a2 = parse_rule(GOOD.replace("effective: {from: 2023-01-01}", "effective: {from: 2023-01-01, to: 2023-12-31}"))
    cat = Catalogue([a2, b]).checked()
    assert [v.version for v in cat.in_force(dt.date(2024, 6, 1))] == [2]
    assert [v.version for v in cat.in_force(dt.date(2023, 6, 1))] == [1]
