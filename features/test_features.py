"""Step definitions for the regulators' scenarios: thin calls into the same services as the CLI."""
from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from pytest_bdd import given, parsers, scenarios, then, when
from sqlalchemy import text

from adapters import audit
from adapters.bootstrap import bootstrap
from adapters.facts_file import FileError, read_facts_file

EXAMPLE = Path(__file__).parents[1] / "tests" / "fixtures" / "contract-example.yaml"
scenarios("loading.feature", "rules.feature")


def _digest(app) -> str:
    h = hashlib.sha256()
    with app.store.engine.connect() as conn:
        for table in ("record_events", "record_chain", "facts", "training"):
            for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")):
                h.update(repr(tuple(row)).encode())
    return h.hexdigest()


@pytest.fixture
def ctx(tmp_path):
    state = {"tmp": tmp_path}
    yield state
    if "app" in state:
        state["app"].close()


@given("一个空的记录库")
def empty_store(ctx):
    ctx["app"] = bootstrap(store_url=f"sqlite:///{ctx['tmp']}/metrolex.db", engine="durable")


@given("已载入合同示例事实文件")
@when("载入合同示例事实文件")
def load_example(ctx):
    ctx["first"] = ctx["app"].record.load(read_facts_file(EXAMPLE))
    ctx["digest"] = _digest(ctx["app"])


@when("再次载入合同示例事实文件")
def load_again(ctx):
    ctx["second"] = ctx["app"].record.load(read_facts_file(EXAMPLE))


@when(parsers.parse("载入一份第 {n:d} 条记录引用了不存在的人员的文件"))
def load_bad(ctx, n):
    events = ["  - {type: comparison-organized, date: 2023-07-01, unit: sh-zjy}"] * (n - 1)
    events.append("  - {type: training-recorded, date: 2023-08-01, person: p-404, hours: 4, off_job: true}")
    bad = ctx["tmp"] / "bad.yaml"
    bad.write_text("events:\n" + "\n".join(events) + "\n", encoding="utf-8")
    with pytest.raises(FileError) as err:
        ctx["app"].record.load(read_facts_file(bad))
    ctx["error"] = err.value


@then(parsers.parse("记录了 {n:d} 条事实"))
def recorded(ctx, n):
    assert ctx["first"].recorded == n


@then("记录链校验通过")
def chain_ok(ctx):
    assert audit.verify(ctx["app"].store).ok


@then("第二次没有新记录")
def nothing_new(ctx):
    assert ctx["second"].recorded == 0 and ctx["second"].repeated == ctx["first"].recorded


@then("记录库与第一次载入后完全相同")
def unchanged(ctx):
    assert _digest(ctx["app"]) == ctx["digest"]


@then(parsers.parse("载入被拒绝, 错误指出第 {line:d} 行的 {field} 字段"))
def refused(ctx, line, field):
    assert ctx["error"].line == line and ctx["error"].field == field


@when(parsers.parse("判定截至 {day} 的履行情况"))
def judge(ctx, day):
    ctx["judgments"] = ctx["app"].compliance.check(dt.date.fromisoformat(day))


def _one(ctx, rule, subject, period=None):
    found = [j for j in ctx["judgments"] if j.rule == rule and j.subject == subject
             and (period is None or j.period == period)]
    assert len(found) == 1, found
    return found[0]


@then(parsers.parse("中心 {subject} 的 {rule} 截止日期为 {due}, 状态为 {status}"))
def center_due_status(ctx, subject, rule, due, status):
    j = _one(ctx, rule, subject)
    assert (j.due, j.status) == (due, status)


@then(parsers.parse("人员 {subject} 的 {rule} {year} 年度状态为 {status}"))
def person_year_status(ctx, subject, rule, year, status):
    assert _one(ctx, rule, subject, year).status == status


@then(parsers.parse("中心 {subject} 没有 {year} 年度的 {rule} 判定"))
def no_judgment(ctx, subject, year, rule):
    assert not [j for j in ctx["judgments"] if j.rule == rule and j.subject == subject and j.period == year]
