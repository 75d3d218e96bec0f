"""The division's one screen that says who is behind on what (DOMAIN.md), server-rendered
zh-CN HTML without JavaScript, mounted by `adapters.api.create_app` under /dashboard:

- 合规矩阵 the compliance matrix: rows are units, columns rules, each cell coloured by the worst
  status of that unit's instances of that rule (met green, met-late teal, open grey, overdue
  amber, breached red), with the counts;
- 逾期清单 the overdue list;
- 工作要点 the plan board: the year's tasks by lead unit (牵头), with their status;
- 时间线 a subject's timeline: every event with its date and the time it was recorded, and
  every notice issued about it.

An agency sees only its own unit. The token comes as `?token=` once (then a cookie) or as a
bearer header. Pages are plain Python string templates (templates/page.html) with every value
passed through html.escape.
"""
from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from html import escape
from importlib import resources
from string import Template
from typing import Callable, Iterable
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from adapters.api import COOKIE, DASHBOARD, Directory, Scope, shanghai_time
from adapters.bootstrap import App
from adapters.timeparse import InputError, parse_day, today_in_shanghai
from adapters.tokens import Principal
from rules.judgment import Judgment

WORST_FIRST = ("breached", "overdue", "open", "met-late", "met")
STATUS_ZH = {"met": "按期履行", "met-late": "逾期后履行", "open": "未到期", "overdue": "已逾期", "breached": "未履行"}
STATUS_SHORT = {"met": "按期", "met-late": "补履行", "open": "未到期", "overdue": "逾期", "breached": "违反"}
TASK_STATUS_ZH = {"assigned": "已分工", "in-progress": "推进中", "completed": "已完成"}
ROLE_ZH = {"division": "市局计量处", "agency": "单位", "auditor": "审计(只读)"}
EVENT_ZH = {
    "unit-registered": "单位登记", "person-registered": "人员登记", "center-registered": "中心登记",
    "plan-published": "发布工作要点", "training-recorded": "培训记录", "event-retracted": "更正(撤回)",
    "comparison-organized": "组织计量比对", "lead-lab-started": "担任主导实验室", "lead-lab-ended": "不再担任主导实验室",
    "person-duties-changed": "岗位职责变更", "person-duties-ended": "法定职责终止", "center-approved": "批准筹建",
    "center-major-event": "重大事项", "center-major-event-notified": "书面告知重大事项",
    "center-annual-report-filed": "报送年度筹建情况", "exchange-activity-held": "举办交流活动",
    "rectification-ordered": "责令限期整改", "rectification-failed": "整改未通过", "rectification-completed": "整改完成",
    "center-acceptance-applied": "申请验收", "center-accepted": "通过验收", "center-revoked": "撤销资格",
    "task-reassigned": "任务重新分工", "task-milestone-set": "设定时间节点", "task-progress-reported": "报告进展",
    "task-completed": "任务完成",
}
NOTICE_ZH = {"reminder": "到期提醒", "overdue": "逾期通知"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store",
}


# -- page frame -------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def _template(name: str) -> str:
    return resources.files("adapters").joinpath("templates", name).read_text(encoding="utf-8")


def page(title: str, body: str, who: Principal | None = None, nav: str = "", status_code: int = 200) -> HTMLResponse:
    """A whole page; `body` and `nav` are HTML already escaped, `title` is text."""
    who_text = ""
    if who is not None:
        who_text = escape(ROLE_ZH.get(who.role, who.role) + (f" {who.unit}" if who.unit else ""))
        who_text += f' · <a href="{DASHBOARD}/logout">退出</a>'
    html = Template(_template("page.html")).substitute(
        title=escape(title), style=_template("dashboard.css"), nav=nav, who=who_text, body=body,
        footer="metrolex · 判定依据见各规则引用的文件条款;时间为北京时间(Asia/Shanghai)")
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def _nav(year: int) -> str:
    links = [(f"{DASHBOARD}", "合规矩阵"), (f"{DASHBOARD}#overdue", "逾期清单"), (f"{DASHBOARD}/plan/{year}", "工作要点")]
    return "".join(f'<a href="{escape(href)}">{escape(text)}</a>' for href, text in links)


def login_page(bad_token: bool) -> HTMLResponse:
    """No valid token: a form that puts one in the query (no JavaScript needed)."""
    message = "令牌无效或已撤销。" if bad_token else "请输入访问令牌(由 metrolex token create 生成)。"
    body = (f'<p>{escape(message)}</p><form method="get" class="query">'
            '<label>令牌 <input type="password" name="token" autocomplete="off" size="50"></label> '
            '<button type="submit">进入</button></form>')
    response = page("需要登录", body, status_code=401)
    response.headers["WWW-Authenticate"] = "Bearer"
    if bad_token:
        response.delete_cookie(COOKIE, path=DASHBOARD)
    return response


def remember_token(request: Request, token: str) -> RedirectResponse:
    """`?token=` once: keep it in an HttpOnly cookie and take it out of the address bar."""
    url = request.url.remove_query_params("token")
    target = url.path + (f"?{url.query}" if url.query else "")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", path=DASHBOARD,
                        secure=request.url.scheme == "https")
    return response


# -- pieces ---------------------------------------------------------------------------------------------
def worst(statuses: Iterable[str]) -> str:
    return min(statuses, key=WORST_FIRST.index)


def _counts(judgments: list[Judgment]) -> dict[str, int]:
    out: dict[str, int] = {}
    for j in judgments:
        out[j.status] = out.get(j.status, 0) + 1
    return {s: out[s] for s in WORST_FIRST if s in out}


def _subject_link(subject: str, directory: Directory) -> str:
    name = directory.name(subject)
    label = f"{name}({subject})" if name != subject else subject
    return f'<a href="{DASHBOARD}/timeline/{quote(subject, safe="")}">{escape(label)}</a>'


def _legend() -> str:
    return ('<p class="legend">' + "".join(f'<span class="s-{s}">{escape(STATUS_ZH[s])}</span>'
                                           for s in reversed(WORST_FIRST)) + "</p>")


def matrix_html(judgments: list[Judgment], scope: Scope, rule_titles: dict[str, str]) -> str:
    """Rows = units, columns = rules; each cell coloured by its worst status, with the counts."""
    directory = scope.directory
    if scope.everything:
        rows = sorted(directory.units, key=lambda u: (directory.units[u].get("jurisdiction", ""),
                                                       directory.units[u].get("kind") != "regulator", u))
    else:
        rows = [scope.unit or ""]
    cells: dict[tuple[str, str], list[Judgment]] = {}
    for j in judgments:
        row = scope.row_of(j)
        if row not in rows:
            rows.append(row)  # e.g. a collective lead (各区市场监管局) that no registered unit is
        cells.setdefault((row, j.rule), []).append(j)
    rules = sorted(set(rule_titles) | {j.rule for j in judgments})
    head = "".join(f'<th class="rule" scope="col" data-rule="{escape(r)}">{escape(rule_titles.get(r, r))}'
                   f"<small>{escape(r)}</small></th>" for r in rules)
    body = []
    for row in rows:
        name = directory.name(row)
        label = (f'<a href="{DASHBOARD}/timeline/{quote(row, safe="")}">{escape(name)}</a><small>{escape(row)}</small>'
                 if row in directory.units else escape(row))
        tds = []
        for rule in rules:
            found = cells.get((row, rule))
            if not found:
                tds.append('<td class="cell empty">—</td>')
                continue
            counts = _counts(found)
            status = worst(counts)
            text = " · ".join(f"{STATUS_SHORT[s]} {n}" for s, n in counts.items())
            data = escape(json.dumps(counts, ensure_ascii=False))
            tds.append(f'<td class="cell s-{status}" data-status="{status}" data-unit="{escape(row)}" '
                       f'data-rule="{escape(rule)}" data-counts="{data}" title="{escape(text)}">'
                       f'<span class="worst">{escape(STATUS_ZH[status])}</span>'
                       f'<span class="counts">{escape(text)}</span></td>')
        body.append(f'<tr data-unit="{escape(row)}"><th scope="row">{label}</th>{"".join(tds)}</tr>')
    return (f'<table id="compliance-matrix" class="matrix"><thead><tr><th scope="col">单位 \\ 规则</th>{head}</tr>'
            f'</thead><tbody>{"".join(body)}</tbody></table>')


def overdue_html(judgments: list[Judgment], scope: Scope, as_of: dt.date) -> str:
    late = sorted((j for j in judgments if j.status in ("overdue", "breached")), key=lambda j: (j.due, j.rule, j.subject))
    if not late:
        return '<p class="muted" id="overdue-list">没有逾期事项。</p>'
    rows = []
    for j in late:
        days = (as_of - dt.date.fromisoformat(j.due)).days
        unit = scope.row_of(j) if scope.everything else (j.unit or "")
        rows.append(f'<tr data-status="{j.status}"><td>{escape(scope.directory.name(unit))}</td>'
                    f"<td>{escape(j.title)}<small>{escape(j.rule)}</small></td>"
                    f"<td>{_subject_link(j.subject, scope.directory)}</td><td>{escape(j.period)}</td>"
                    f'<td>{escape(j.due)}</td><td>{days}</td><td class="s-{j.status}">{escape(STATUS_ZH[j.status])}</td>'
                    f"<td>{escape(j.citation.get('document', ''))} {escape(j.citation.get('clause', ''))}</td></tr>")
    return ('<table id="overdue-list"><thead><tr><th>单位</th><th>规则</th><th>对象</th><th>期间</th><th>截止日期</th>'
            f'<th>逾期天数</th><th>状态</th><th>依据</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def plan_board_html(plan: dict, scope: Scope) -> str:
    """Tasks by lead unit (a task with several leads stands under each), with their status."""
    lanes: dict[str, list[dict]] = {}
    for task in plan["tasks"]:
        if scope.sees_task(task, plan.get("jurisdiction")):
            for lead in task.get("leads") or ["(未定)"]:
                lanes.setdefault(lead, []).append(task)
    if not lanes:
        return '<p class="muted">没有本单位牵头或配合的任务。</p>'
    out = []
    for lead, tasks in lanes.items():
        items = []
        for t in tasks:
            status = t.get("status", "assigned")
            progress = t.get("progress") or []
            latest = progress[-1] if progress else None
            milestones = t.get("milestones_set") or []
            items.append(
                f'<div class="task" data-task="{t["number"]}" data-status="{escape(status)}">'
                f'<div class="title">{t["number"]}. {escape(t["title"])} '
                f'<span class="badge t-{escape(status)}">{escape(TASK_STATUS_ZH.get(status, status))}</span></div>'
                + (f'<div class="muted">配合:{escape("、".join(t.get("supporting") or []))}</div>' if t.get("supporting") else "")
                + "".join(f'<div>时间节点:{escape(m["name"])} {escape(m["due"])}</div>' for m in milestones)
                + (f'<div>最新进展({escape(latest["date"])},{escape(latest["unit"])}):{escape(latest["text"])}</div>'
                   if latest else "")
                + (f'<div class="muted">完成于 {escape(t["completed_on"])}</div>' if t.get("completed_on") else "")
                + "</div>")
        out.append(f'<section class="lane"><h2>牵头:{escape(lead)}</h2>{"".join(items)}</section>')
    return f'<div class="board" id="plan-board">{"".join(out)}</div>'


def _fields_text(fields: dict) -> str:
    skip = {"date"}
    return ";".join(f"{k}={v if not isinstance(v, list) else '、'.join(map(str, v))}"
                    for k, v in fields.items() if k not in skip)


def timeline_html(events: list[dict], notices: list[dict]) -> str:
    entries = []
    for e in events:
        entries.append((e["date"] or "", e["recorded_at"], "event", e))
    for n in notices:
        entries.append((n.get("as_of", ""), n.get("issued_at", ""), "notice", n))
    entries.sort(key=lambda x: (x[0], x[1]))
    rows = []
    for day, recorded, kind, item in entries:
        when = (f'<time datetime="{escape(recorded)}">{escape(shanghai_time(recorded))}</time>' if recorded else "")
        if kind == "event":
            retracted = item.get("retracted_by")
            note = f"已被 {escape(retracted)} 撤回" if retracted else ""
            rows.append(f'<tr class="event{" retracted" if retracted else ""}" data-id="{escape(item["id"])}">'
                        f"<td>{escape(day) or '—'}</td><td>{when}</td><td>{escape(EVENT_ZH.get(item['type'], item['type']))}"
                        f"<small>{escape(item['type'])}</small></td><td>{escape(item['id'])}</td>"
                        f"<td>{escape(_fields_text(item['fields']))}</td><td class=\"note\">{note}</td></tr>")
        else:
            rows.append(f'<tr class="notice" data-key="{escape(item.get("key", ""))}"><td>{escape(day)}</td><td>{when}</td>'
                        f"<td>{escape(NOTICE_ZH.get(item['kind'], item['kind']))}<small>{escape(item['kind'])}</small></td>"
                        f"<td>{escape(item['rule'])}</td><td>截止 {escape(item['due'])} → {escape(item['recipient'])}</td>"
                        f"<td></td></tr>")
    return ('<table id="timeline"><thead><tr><th>事件日期</th><th>记录时间(北京时间)</th><th>类型</th><th>编号</th>'
            f'<th>内容</th><th>更正</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def export_html(rows: list[dict], as_of: str) -> str:
    """`audit export --format html`: one row per judgment, coloured by status."""
    heads = ("单位", "规则", "对象", "期间", "截止", "状态", "履行日期", "依据", "条款", "说明")
    keys = ("unit", "rule", "subject", "period", "due", "status", "satisfied_on", "document", "clause", "explanation")
    body = "".join(f'<tr class="s-{escape(r["status"])}">' + "".join(f"<td>{escape(str(r[k]))}</td>" for k in keys)
                   + "</tr>" for r in rows)
    table = (f'<table id="export"><thead><tr>{"".join(f"<th>{h}</th>" for h in heads)}</tr></thead>'
             f"<tbody>{body}</tbody></table>")
    return page(f"计量监管合规报告 — 截至 {as_of}", table).body.decode("utf-8")


# -- routes -----------------------------------------------------------------------------------------------
def router(app: App, principal: Callable[..., Principal]) -> APIRouter:
    r = APIRouter(include_in_schema=False)

    def as_of_of(value: str | None) -> dt.date:
        if not value:
            return today_in_shanghai(app.clock())
        try:
            return parse_day(value, "as_of")
        except InputError as exc:
            raise HTTPException(422, detail=str(exc)) from None

    def overview(as_of: str | None = Query(None), who: Principal = Depends(principal)) -> HTMLResponse:
        day = as_of_of(as_of)
        rows = app.record.fact_rows()
        scope = Scope(who, Directory.from_rows(rows))
        judgments = [j for j in app.compliance.check(day, rows=rows) if scope.sees_judgment(j)]
        titles = {v.id: v.title for v in app.catalogue.in_force(day)}
        counts = _counts(judgments)
        summary = "、".join(f"{STATUS_ZH[s]} {n}" for s, n in counts.items()) or "没有义务实例"
        body = (f'<form method="get" class="query"><label>截至 <input type="date" name="as_of" value="{day.isoformat()}">'
                '</label> <button type="submit">查看</button></form>'
                f"<p>截至 {day.isoformat()} 日终(北京时间):{escape(summary)}</p>{_legend()}"
                f"<h2>合规矩阵</h2>{matrix_html(judgments, scope, titles)}"
                f'<h2 id="overdue">逾期清单</h2>{overdue_html(judgments, scope, day)}')
        return page("合规矩阵", body, who, _nav(day.year))

    r.add_api_route("", overview, methods=["GET"], response_class=HTMLResponse)
    r.add_api_route("/", overview, methods=["GET"], response_class=HTMLResponse)

    @r.get("/plan/{year}", response_class=HTMLResponse)
    def plan_board(year: int, jurisdiction: str = Query("shanghai", pattern="^(shanghai|jiangsu)$"),
                   who: Principal = Depends(principal)) -> HTMLResponse:
        from adapters.plans import show_plan
        plan = show_plan(app.record, year, jurisdiction)
        if plan is None:
            body = f'<p class="muted">记录中没有 {year} 年的工作要点(metrolex plan import)。</p>'
            return page(f"{year} 年工作要点", body, who, _nav(year), status_code=404)
        scope = Scope(who, Directory.from_rows(app.record.fact_rows()))
        title = plan.get("document", {}).get("title") or f"{year} 年工作要点"
        return page(title, plan_board_html(plan, scope), who, _nav(year))

    @r.get("/timeline/{subject}", response_class=HTMLResponse)
    def timeline(subject: str, who: Principal = Depends(principal)) -> HTMLResponse:
        scope = Scope(who, Directory.from_rows(app.record.fact_rows()))
        events = app.compliance.history(subject) if scope.sees(subject) else []
        notices = app.notices.issued(subject) if scope.sees(subject) else []
        year = today_in_shanghai(app.clock()).year
        if not events and not notices:
            return page("时间线", f"<p>没有关于 {escape(subject)} 的记录。</p>", who, _nav(year), status_code=404)
        name = scope.directory.name(subject)
        title = f"时间线:{name}" + (f"({subject})" if name != subject else "")
        return page(title, timeline_html(events, notices), who, _nav(year))

    @r.get("/logout", response_class=HTMLResponse)
    def logout() -> HTMLResponse:
        response = login_page(False)
        response.status_code = 200
        response.delete_cookie(COOKIE, path=DASHBOARD)
        return response

    return r
