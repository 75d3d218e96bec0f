"""Task milestones, collective names, indicators and the Jiangsu mid-term evaluation."""
import datetime as dt
import json

from adapters.facts_file import read_facts_file
from adapters.plans import bundled_path, read_plan
from adapters.record import rows_in_memory
from rules.calendar import WorkdayCalendar
from rules.catalogue import Catalogue
from rules.evaluate import evaluate
from rules.units import collective_names, expand, expander

CAT, CAL = Catalogue.bundled(), WorkdayCalendar.bundled()


def _rows(tmp_path, facts: dict, with_plan: bool = True):
    p = tmp_path / "f.json"
    p.write_text(json.dumps(facts, ensure_ascii=False), encoding="utf-8")
    rows = rows_in_memory(read_facts_file(p), start_seq=10)
    if with_plan:
        plan = read_plan(bundled_path("shanghai-2023"))
        rows.insert(0, {"seq": 1, "fact_id": plan.id, "type": plan.type, "date": None, "subject": plan.subject,
                        "refers": None, "fields": plan.fields, "jurisdiction": "shanghai", "recorded_at": "x"})
    return rows


UNITS = [{"id": "jlc", "name": "市局计量处", "kind": "regulator"},
         {"id": "pd", "name": "浦东新区市场监管局", "kind": "district-bureau"},
         {"id": "xh", "name": "徐汇区市场监管局", "kind": "district-bureau"}]


def test_collective_names_expand_to_registered_units_by_kind():
    units = {u["id"]: dict(u, jurisdiction="shanghai") for u in UNITS}
    assert expand("各区市场监管局", units, "shanghai") == ["pd", "xh"]
    assert expand("市局计量处", units, "shanghai") == ["jlc"]
    assert expand("上海市计量协会", units, "shanghai") == []
    assert expand("各区市场监管局", units, "jiangsu") == []


def _scan(name, units, jurisdiction):
    """What a name denotes, by scanning every unit: the specification the index must meet."""
    exact = sorted(uid for uid, u in units.items() if u.get("name") == name and u.get("jurisdiction") == jurisdiction)
    if exact:
        return exact
    kinds = collective_names().get(name) or ()
    return sorted(uid for uid, u in units.items() if u.get("kind") in kinds and u.get("jurisdiction") == jurisdiction)


def test_the_indexed_expander_names_the_same_units_as_a_scan_of_every_unit():
    # every collective name, every registered name, unknown names; units of two jurisdictions,
    # two units sharing a name, a kind under several collective names (expand uses the index)
    units = {u["id"]: dict(u, jurisdiction="shanghai") for u in UNITS}
    units["pd2"] = {"id": "pd2", "name": "浦东新区市场监管局", "kind": "district-bureau", "jurisdiction": "shanghai"}
    units["js"] = {"id": "js", "name": "市局计量处", "kind": "regulator", "jurisdiction": "jiangsu"}
    units["lab"] = {"id": "lab", "name": "上海市计量测试技术研究院", "kind": "lead-lab", "jurisdiction": "shanghai"}
    # one collective name over two kinds, whose ids interleave
    units["a-di"] = {"id": "a-di", "name": "区所甲", "kind": "district-institute", "jurisdiction": "shanghai"}
    units["b-in"] = {"id": "b-in", "name": "市院", "kind": "institute", "jurisdiction": "shanghai"}
    units["c-di"] = {"id": "c-di", "name": "区所乙", "kind": "district-institute", "jurisdiction": "shanghai"}
    names = list(collective_names()) + [u["name"] for u in units.values()] + ["无此单位", ""]
    compared = 0
    for jurisdiction in ("shanghai", "jiangsu", "zhejiang"):
        expand_name = expander(units, jurisdiction)
        for name in names:
            assert expand_name(name) == _scan(name, units, jurisdiction) == expand(name, units, jurisdiction), \
                (jurisdiction, name)
            compared += bool(expand_name(name))
    assert compared >= 5
    assert expander(units, "shanghai")("浦东新区市场监管局") == ["pd", "pd2"]
    assert expander(units, "shanghai")("各法定计量技术机构") == ["a-di", "b-in", "c-di"]


def test_a_task_milestone_reported_on_time_is_met_and_copies_the_supporting_units(tmp_path):
    rows = _rows(tmp_path, {"units": UNITS, "events": [
        {"id": "m1", "type": "task-milestone-set", "date": "2023-03-01", "plan": "shanghai-2023", "task": 1,
         "name": "半年进展", "due": "2023-06-30"},
        {"type": "task-progress-reported", "date": "2023-06-28", "plan": "shanghai-2023", "task": 1,
         "unit": "市局计量处", "text": "已部署", "milestone": "半年进展"}]})
    [j] = evaluate(rows, dt.date(2023, 7, 1), CAT.in_force(dt.date(2023, 7, 1), {"task-milestone"}), CAL)
    assert (j.subject, j.status, j.satisfied_on, j.unit) == ("shanghai-2023/1", "met", "2023-06-28", "jlc")
    assert j.values["copy_units"] == ["pd", "xh"]


def test_an_unreported_milestone_is_overdue_the_day_after(tmp_path):
    rows = _rows(tmp_path, {"units": UNITS, "events": [
        {"type": "task-milestone-set", "date": "2023-03-01", "plan": "shanghai-2023", "task": 6,
         "name": "端午节", "due": "2023-06-22"}]})
    statuses = {d: evaluate(rows, dt.date.fromisoformat(d), CAT.in_force(dt.date.fromisoformat(d), {"task-milestone"}), CAL)[0].status
                for d in ("2023-06-22", "2023-06-23")}
    assert statuses == {"2023-06-22": "open", "2023-06-23": "overdue"}


def test_binding_indicator_not_reached_by_2025_is_breached_expected_one_overdue(tmp_path):
    rows = _rows(tmp_path, {"units": UNITS, "events": [
        {"type": "indicator-reported", "date": "2025-06-30", "indicator": "sh-9", "value": 2400},
        {"type": "indicator-reported", "date": "2025-06-30", "indicator": "sh-4", "value": 900}]}, with_plan=False)
    js = {j.subject: j for j in evaluate(rows, dt.date(2026, 1, 1), CAT.in_force(dt.date(2026, 1, 1), {"plan-indicators"}), CAL)
          if j.jurisdiction == "shanghai"}
    assert js["shanghai:sh-9"].status == "breached" and js["shanghai:sh-9"].values["binding"] is True
    assert js["shanghai:sh-4"].status == "overdue"
    rows2 = rows + [dict(rows[-1], seq=99, fact_id="late", date="2025-11-30",
                         fields={"indicator": "sh-9", "value": 2500, "date": "2025-11-30"})]
    js2 = {j.subject: j for j in evaluate(rows2, dt.date(2026, 1, 1), CAT.in_force(dt.date(2026, 1, 1), {"plan-indicators"}), CAL)}
    assert js2["shanghai:sh-9"].status == "met"


def test_jiangsu_mid_term_evaluation_is_due_by_the_end_of_2025(tmp_path):
    facts = {"jurisdiction": "jiangsu", "units": [{"id": "js-sj", "name": "江苏省市场监管局", "kind": "regulator"}],
             "events": [{"type": "indicator-reported", "date": "2024-01-10", "indicator": "js-10", "value": 120}]}
    rows = _rows(tmp_path, facts, with_plan=False)
    [j] = evaluate(rows, dt.date(2026, 1, 1), CAT.in_force(dt.date(2026, 1, 1), {"plan-mid-term-evaluation"}), CAL)
    assert (j.subject, j.due, j.status, j.unit) == ("jiangsu", "2025-12-31", "overdue", "js-sj")
    facts["events"].append({"type": "plan-evaluated", "date": "2025-12-20", "evaluation": "mid-term"})
    [j] = evaluate(_rows(tmp_path, facts, with_plan=False), dt.date(2026, 1, 1),
                   CAT.in_force(dt.date(2026, 1, 1), {"plan-mid-term-evaluation"}), CAL)
    assert j.status == "met"


def test_a_jurisdiction_not_tracking_its_plan_gets_no_plan_judgments(tmp_path):
    rows = _rows(tmp_path, {"units": UNITS}, with_plan=False)
    assert evaluate(rows, dt.date(2026, 1, 1), CAT.in_force(dt.date(2026, 1, 1), {"plan-indicators"}), CAL) == []
