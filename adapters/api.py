"""The HTTP API under /api/v1 (shared/CONTRACT.md, `metrolex serve`): parse a request, check
who may do it, call one service, map errors to status codes.

Who may do what (DOMAIN.md, "Who uses the product"):

- the division (市局计量处) reads and writes everything;
- an agency reads its own unit's obligations, tasks and inbox, and reports only facts about its
  own subjects (its people, the centers it hosts, itself); registering units, people and centers
  and the division's own decisions (approval, rectification orders, acceptance, revocation,
  task assignment) are the division's;
- an auditor reads everything and writes nothing.

Every write goes through the same path as `metrolex load`: a facts document, validated by
`read_facts_file`, recorded in one transaction by `RecordService.load` (all or nothing).

`/api/v1/health` is the only API path without a token; `/openapi.json` (the description, no data) is public too.
The calendar feed also takes `?token=` (calendar programs cannot send headers), the dashboard
a cookie set from `?token=`.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt
from starlette.concurrency import run_in_threadpool

from adapters.audit import export_csv, export_rows
from adapters.bootstrap import App
from adapters.compliance import Filters
from adapters.facts_file import FileError, read_facts_file
from adapters.settings import SHANGHAI
from adapters.timeparse import InputError, parse_day, parse_known_at, today_in_shanghai
from adapters.tokens import Principal, authenticate
from domain.facts import EVENT_TYPES, Fact
from rules.judgment import STATUSES, Judgment

API = "/api/v1"
PUBLIC_PATHS = {f"{API}/health", "/openapi.json"}  # the description of the API is public; its data is not
CALENDAR_PREFIX = f"{API}/calendar/"
DASHBOARD = "/dashboard"
COOKIE = "metrolex_token"

# Acts of the regulator itself: an agency reporting one would be forging the division's decision.
DIVISION_ONLY_EVENTS = frozenset({
    "center-approved", "center-accepted", "center-revoked", "rectification-ordered",
    "rectification-failed", "lead-lab-started", "lead-lab-ended", "task-reassigned",
    "task-milestone-set",
})
CENTER_EVENTS = tuple(t for t, spec in EVENT_TYPES.items() if "center" in spec)
STATUS_ZH = {"met": "按期履行", "met-late": "逾期后履行", "open": "未到期", "overdue": "已逾期",
             "breached": "未履行(不可补正)"}


# -- who owns what --------------------------------------------------------------------------------
def _bare(name: str) -> str:
    """市局计量处(华东大区中心办公室) → 市局计量处: a task may name a unit with its office."""
    return re.split(r"[(（]", name, maxsplit=1)[0].strip()


@dataclass
class Directory:
    """Units, people and centers as registered, and which unit answers for each subject."""

    units: dict[str, dict]
    people: dict[str, dict]
    centers: dict[str, dict]

    @classmethod
    def from_rows(cls, rows: Iterable[dict]) -> "Directory":
        units: dict[str, dict] = {}
        people: dict[str, dict] = {}
        centers: dict[str, dict] = {}
        for r in rows:
            target = {"unit-registered": units, "person-registered": people,
                      "center-registered": centers}.get(r["type"])
            if target is not None:
                target[r["fields"]["id"]] = dict(r["fields"], recorded_at=r["recorded_at"])
        return cls(units, people, centers)

    def unit_of(self, subject: str | None) -> str | None:
        """The unit answerable for a subject: a person's unit, a center's host, a unit itself."""
        if subject is None:
            return None
        if subject in self.people:
            return self.people[subject].get("unit")
        if subject in self.centers:
            return self.centers[subject].get("host")
        if subject in self.units:
            return subject
        return None

    def resolve(self, name_or_id: str | None) -> str | None:
        """A unit id from an id or a name as a plan document writes it."""
        if not name_or_id:
            return None
        if name_or_id in self.units:
            return name_or_id
        bare = _bare(name_or_id)
        for uid, unit in self.units.items():
            if unit.get("name") in (name_or_id, bare):
                return uid
        return None

    def named(self, name: str, jurisdiction: str | None) -> set[str]:
        """The unit ids a plan's unit name denotes: a collective name (各区市场监管局 …) expands to
        the registered units of its kinds (rules/collective_names.yaml)."""
        from rules.units import expand
        found = set(expand(name, self.units, jurisdiction)) if jurisdiction else set()
        one = self.resolve(name)
        return found | ({one} if one else set())

    def jurisdiction_of(self, unit: str | None) -> str | None:
        return self.units.get(unit or "", {}).get("jurisdiction")

    def name(self, subject: str | None) -> str:
        for table in (self.units, self.people, self.centers):
            if subject in table:
                return table[subject].get("name") or subject
        return subject or ""

    def division(self, jurisdiction: str) -> str | None:
        for uid, unit in sorted(self.units.items()):
            if unit.get("kind") == "regulator" and unit.get("jurisdiction", "shanghai") == jurisdiction:
                return uid
        return None


@dataclass
class Scope:
    """What one principal may see and report."""

    principal: Principal
    directory: Directory

    @property
    def everything(self) -> bool:
        return self.principal.role in ("division", "auditor")

    @property
    def unit(self) -> str | None:
        return self.principal.unit

    def owns(self, subject: str | None) -> bool:
        """The subject is the agency's unit, one of its people or a center it hosts."""
        if subject is None or self.unit is None:
            return False
        return subject == self.unit or self.directory.unit_of(subject) == self.unit

    def sees(self, subject: str | None) -> bool:
        return self.everything or self.owns(subject)

    def named_in(self, names: Iterable[str], jurisdiction: str | None = None) -> bool:
        """The agency is among the units a task names (by id, by name, or by a collective name)."""
        jurisdiction = jurisdiction or self.directory.jurisdiction_of(self.unit)
        return any(n == self.unit or self.unit in self.directory.named(n, jurisdiction) for n in names)

    def sees_task(self, task: dict, jurisdiction: str | None = None) -> bool:
        return self.everything or self.named_in(list(task.get("leads", [])) + list(task.get("supporting", [])),
                                                jurisdiction)

    def sees_judgment(self, j: Judgment) -> bool:
        if self.everything:
            return True
        if j.subject_kind == "task":
            return self.named_in(list(j.values.get("leads", [])) + list(j.values.get("supporting", [])),
                                 j.jurisdiction)
        return self.owns(j.subject) or (j.unit is not None and self.directory.resolve(j.unit) == self.unit)

    def row_of(self, j: Judgment) -> str:
        """The unit row of the compliance matrix a judgment belongs to."""
        if not self.everything:
            return self.unit or ""
        return (self.directory.resolve(j.unit) or self.directory.unit_of(j.subject) or j.unit or j.subject)


def scope_for(app: App, principal: Principal, rows: list[dict] | None = None) -> Scope:
    rows = app.record.fact_rows() if rows is None else rows
    return Scope(principal, Directory.from_rows(rows))


# -- errors ------------------------------------------------------------------------------------------
def _forbidden(message: str) -> HTTPException:
    return HTTPException(403, detail=message)


def _not_found(message: str) -> HTTPException:
    return HTTPException(404, detail=message)


def _unprocessable(loc: list, message: str, **extra) -> HTTPException:
    return HTTPException(422, detail=[{"loc": loc, "msg": message, "type": "value_error", **extra}])


def _day(value: str | None, name: str, default: dt.date | None = None) -> dt.date:
    if value is None:
        if default is None:
            raise _unprocessable(["query", name], "missing (a date YYYY-MM-DD)")
        return default
    try:
        return parse_day(value, name)
    except InputError as exc:
        raise _unprocessable(["query", name], str(exc)) from None


def _known_at(value: str | None) -> str | None:
    try:
        return parse_known_at(value)
    except InputError as exc:
        raise _unprocessable(["query", "known_at"], str(exc).replace("--known-at", "known_at")) from None


_RECORD = re.compile(r"^(units|people|centers|events|tasks)\[(\d+)\]")


def file_error(exc: FileError, loc_of: Callable[[FileError], list] | None = None):
    """A refused document → 422 naming the place (loc), the line, the field and the record."""
    if loc_of is not None:
        loc = loc_of(exc)
    else:
        loc = ["body"]
        m = _RECORD.match(exc.record or "")
        if m:
            loc += [m.group(1), int(m.group(2))]
        if exc.field:
            loc.append(exc.field)
    return _unprocessable(loc, exc.message, line=exc.line, field=exc.field, record=exc.record,
                          file="request.json")


def _flat_loc(renames: dict[str, list] | None = None) -> Callable[[FileError], list]:
    """Convenience endpoints: the document is built from the body's own fields."""
    def loc(exc: FileError) -> list:
        if exc.field and renames and exc.field in renames:
            return list(renames[exc.field])
        return ["body"] + ([exc.field] if exc.field else [])
    return loc


# -- recording -------------------------------------------------------------------------------------
def check_agency_facts(app: App, scope: Scope, doc, facts: list[Fact]) -> None:
    """An agency reports only facts about its own subjects (403 otherwise, nothing stored).

    The same refusal for a subject of another unit and for one that does not exist, so that the
    answer does not reveal what other units have."""
    if scope.everything:
        return
    regs = [r for r in doc.records if r.section != "events"]
    if regs:
        raise _forbidden(f"{regs[0].label}: registering units, people and centers is the division's")
    rows = app.record.fact_rows()
    by_id = {r["fact_id"]: r for r in rows}
    in_doc = {f.id: f for f in facts}
    plans: dict[str, dict | None] = {}

    def plan_task(key: str, number: Any) -> dict | None:
        if key not in plans:
            from adapters.plans import show_plan
            year = key.rsplit("-", 1)[-1]
            jurisdiction = key.rsplit("-", 1)[0]
            plans[key] = show_plan(app.record, int(year), jurisdiction) if year.isdigit() else None
        plan = plans[key]
        return next((t for t in plan["tasks"] if t["number"] == int(number)), None) if plan else None

    def allowed(fact_type: str, fields: dict, subject: str | None) -> str | None:
        if fact_type in DIVISION_ONLY_EVENTS or fact_type.endswith("-registered") or fact_type == "plan-published":
            return f"{fact_type} is the division's decision"
        if fact_type in ("task-progress-reported", "task-completed"):
            if fields.get("unit") is not None and scope.directory.resolve(fields["unit"]) != scope.unit:
                return f"unit {fields['unit']!r} is not {scope.unit!r}"
            task = plan_task(fields["plan"], fields["task"])
            names = (task or {}).get("leads", []) + ([] if fact_type == "task-completed"
                                                     else (task or {}).get("supporting", []))
            if task is None or not scope.named_in(names, fields["plan"].rsplit("-", 1)[0]):
                role = "a lead unit" if fact_type == "task-completed" else "a lead or supporting unit"
                return f"{scope.unit!r} is not {role} of task {fields['task']} of {fields['plan']!r}"
            return None
        if subject is None:
            return f"{fact_type} is reported by the division"
        if not scope.owns(subject):
            return f"{subject!r} is not a subject of unit {scope.unit!r}"
        return None

    for fact in facts:
        if fact.type == "event-retracted":
            target = fact.fields["retracts"]
            if target in in_doc:
                t = in_doc[target]
                why = allowed(t.type, t.fields, t.subject)
            elif target in by_id:
                t = by_id[target]
                why = allowed(t["type"], t["fields"], t["subject"])
            else:
                why = f"{target!r} is not an event of unit {scope.unit!r}"
        else:
            why = allowed(fact.type, fact.fields, fact.subject)
        if why:
            raise _forbidden(f"{fact.id}: {why}; an agency reports only its own facts")


def record_document(app: App, principal: Principal, text: str,
                    loc_of: Callable[[FileError], list] | None = None) -> dict:
    """Validate and record a facts document (JSON text) exactly as `metrolex load` would."""
    from adapters.record import facts_of
    try:
        doc = read_facts_file(Path("request.json"), text=text)
        located = facts_of(doc)
    except FileError as exc:
        raise file_error(exc, loc_of) from None
    check_agency_facts(app, scope_for(app, principal), doc, [loc.fact for loc in located])
    try:
        result = app.record.load(doc, actor=principal.actor)
    except FileError as exc:
        raise file_error(exc, loc_of) from None
    out = result.as_dict()
    out.pop("file", None)
    out["ids"] = [loc.fact.id for loc in located]
    return out


def import_plan_text(app: App, principal: Principal, text: str) -> dict:
    """A plan document as `metrolex plan import` reads it (refusals name the line of `text`)."""
    from adapters.plans import import_plan
    with tempfile.TemporaryDirectory(prefix="metrolex-plan-") as tmp:
        path = Path(tmp) / "request.json"
        path.write_text(text, encoding="utf-8")
        try:
            fact, result = import_plan(app.record, path, actor=principal.actor)
        except FileError as exc:
            raise file_error(exc) from None
    return {"plan": fact.fields["key"], "tasks": len(fact.fields["tasks"]),
            "recorded": result.recorded, "already_recorded": result.repeated}


def one_event(jurisdiction: str, event: dict) -> str:
    body = {"jurisdiction": jurisdiction, "events": [{k: v for k, v in event.items() if v is not None}]}
    return json.dumps(body, ensure_ascii=False, indent=2)


# -- iCalendar (RFC 5545) ----------------------------------------------------------------------------
def ics_text(value: str) -> str:
    """TEXT escaping (RFC 5545 3.3.11)."""
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n"))


def ics_fold(line: str) -> str:
    """Lines of at most 75 octets; a continuation starts with one space (RFC 5545 3.1), never
    inside a UTF-8 character."""
    parts, current, size = [], "", 0
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > 75:
            parts.append(current)
            current, size = " ", 1
        current += ch
        size += n
    parts.append(current)
    return "\r\n".join(parts)


def render_ics(unit: str, unit_name: str, judgments: list[Judgment], directory: Directory,
               stamp: dt.datetime) -> str:
    """The due dates of a unit's open and overdue obligations as all-day events."""
    now = stamp.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//metrolex//计量监管//ZH", "CALSCALE:GREGORIAN",
             "METHOD:PUBLISH", f"X-WR-CALNAME:{ics_text(unit_name + ' 计量监管截止日期')}",
             "X-WR-TIMEZONE:Asia/Shanghai"]
    for j in judgments:
        due = dt.date.fromisoformat(j.due)
        uid = "|".join([j.rule, j.subject, j.period] + ([j.trigger] if j.trigger else []))
        who = directory.name(j.subject)
        who = f"{who}({j.subject})" if who != j.subject else j.subject
        summary = f"【{STATUS_ZH[j.status]}】{j.title}:{who} 截止"
        description = (f"{j.explanation}\n依据:{j.citation.get('document', '')} {j.citation.get('clause', '')}"
                       + ("\n(截止日期依据的工作日历尚未公布,为暂定)" if j.provisional else ""))
        lines += ["BEGIN:VEVENT", f"UID:{ics_text(uid)}", f"DTSTAMP:{now}",
                  f"DTSTART;VALUE=DATE:{due.strftime('%Y%m%d')}",
                  f"DTEND;VALUE=DATE:{(due + dt.timedelta(days=1)).strftime('%Y%m%d')}",
                  f"SUMMARY:{ics_text(summary)}", f"DESCRIPTION:{ics_text(description)}",
                  f"CATEGORIES:{ics_text(j.rule)}", "TRANSP:TRANSPARENT", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "".join(ics_fold(line) + "\r\n" for line in lines)


# -- request bodies of the convenience endpoints ------------------------------------------------
class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

class TrainingIn(_In):
    id: str | None = Field(None, description="the event id; without one it derives from the content, "
                                             "so posting the same training twice records it once")
    person: str
    date: str = Field(..., examples=["2024-03-02"])
    hours: StrictInt | StrictFloat
    off_job: StrictBool
    course: str | None = None
    note: str | None = None

class ComparisonIn(_In):
    id: str | None = None
    unit: str
    date: str = Field(..., examples=["2024-06-10"])
    subject: str | None = Field(None, description="what was compared, e.g. 压力表")
    note: str | None = None

class CenterEventIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(..., description="one of " + ", ".join(CENTER_EVENTS))
    date: str
    id: str | None = None

class ProgressIn(_In):
    id: str | None = None
    date: str
    text: str
    unit: str | None = Field(None, description="the reporting unit; default the caller's unit")
    milestone: str | None = None
    note: str | None = None

class CompleteIn(_In):
    id: str | None = None
    date: str
    unit: str | None = None
    note: str | None = None

class ReassignIn(_In):
    id: str | None = None
    date: str
    leads: list[str]
    supporting: list[str] = []
    note: str | None = None

class MilestoneIn(_In):
    id: str | None = None
    date: str
    name: str
    due: str
    note: str | None = None


# -- the application -------------------------------------------------------------------------------
def json_object_stream(head: dict, key: str, items: Iterable[dict], batch: int = 500) -> Iterator[bytes]:
    """`head | {key: [*items]}` exactly as JSONResponse renders it (compact UTF-8 JSON), in
    chunks of `batch` items, so that the whole document is never held at once."""
    def dumps(value) -> str:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
    opening = dumps(head)[:-1] + ("," if head else "")
    chunk = [opening + dumps(key) + ":["]
    first = True
    for item in items:
        chunk.append(dumps(item) if first else "," + dumps(item))
        first = False
        if len(chunk) >= batch:
            yield "".join(chunk).encode()
            chunk = []
    chunk.append("]}")
    yield "".join(chunk).encode()


def _token_of(request) -> tuple[str | None, str]:
    """The bearer token a request carries, and where it came from."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), "header"
    path = request.url.path
    if path.startswith(CALENDAR_PREFIX) or path.startswith(DASHBOARD):
        if request.query_params.get("token"):
            return request.query_params["token"], "query"
    if path.startswith(DASHBOARD) and request.cookies.get(COOKIE):
        return request.cookies[COOKIE], "cookie"
    return None, ""


def create_app(app: App):
    """The FastAPI application over one bootstrapped App (nothing happens at import time)."""
    from adapters import dashboard

    api = FastAPI(title="metrolex", version="1", docs_url=None, redoc_url=None, openapi_url=None,
                  description="Event-sourced rules engine for metrology administration (计量监管). "
                              "Every path but /api/v1/health needs `Authorization: Bearer <token>` "
                              "(`metrolex token create`).")
    bearer = HTTPBearer(auto_error=False, description="a token from `metrolex token create`")

    @api.middleware("http")
    async def authenticate_request(request: Request, call_next):
        path = request.url.path
        guarded = (path.startswith(API + "/") or path == API or path == "/openapi.json"
                   or path == DASHBOARD or path.startswith(DASHBOARD + "/"))
        if not guarded or path in PUBLIC_PATHS:
            return await call_next(request)
        token, source = _token_of(request)
        principal = await run_in_threadpool(authenticate, app.store, token) if token else None
        on_dashboard = path == DASHBOARD or path.startswith(DASHBOARD + "/")
        if principal is None:
            if on_dashboard:
                return dashboard.login_page(bool(token))
            return JSONResponse({"detail": "a valid bearer token is required"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        if on_dashboard and source == "query":
            return dashboard.remember_token(request, token)
        request.state.principal = principal
        return await call_next(request)

    def principal(request: Request,
                  _credentials: HTTPAuthorizationCredentials | None = Security(bearer)) -> Principal:
        return request.state.principal

    def division(who: Principal = Depends(principal)) -> Principal:
        if who.role != "division":
            raise _forbidden(f"only the division may do this (you are {who.actor})")
        return who

    def reader_of_all(who: Principal = Depends(principal)) -> Principal:
        if who.role not in ("division", "auditor"):
            raise _forbidden(f"only the division and auditors may read this (you are {who.actor})")
        return who

    def writer(who: Principal = Depends(principal)) -> Principal:
        if who.role == "auditor":
            raise _forbidden("auditors read the record; they do not write to it")
        return who

    def today() -> dt.date:
        return today_in_shanghai(app.clock())

    @api.get("/openapi.json", include_in_schema=False)
    def openapi():
        return JSONResponse(api.openapi())

    r = APIRouter(prefix=API)

    # -- health --------------------------------------------------------------------------------
    @r.get("/health", tags=["service"], summary="Liveness and the kind of store (no token needed)")
    def health():
        from sqlalchemy import text
        try:
            with app.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # the store is down: say so, don't crash
            return JSONResponse({"status": "unavailable", "store": _store_kind(app), "error": type(exc).__name__},
                                status_code=503)
        out = {"status": "ok", "store": _store_kind(app)}
        service = app.extras.get("scheduler")
        if service is not None:  # only under `metrolex serve`
            out["scheduler"] = "leader" if service.is_leader else "standby"
        return out

    # -- judgments -----------------------------------------------------------------------------
    def _statuses(values: list[str] | None) -> set[str] | None:
        out = {s.strip() for v in values or [] for s in v.split(",") if s.strip()}
        bad = out - set(STATUSES)
        if bad:
            raise _unprocessable(["query", "status"], f"unknown status {sorted(bad)[0]!r} (known: {', '.join(STATUSES)})")
        return out or None

    def _many(values: list[str] | None) -> set[str] | None:
        return {s.strip() for v in values or [] for s in v.split(",") if s.strip()} or None

    @r.get("/judgments", tags=["compliance"],
           summary="Judgment of every obligation instance (same objects as `metrolex check --json`)")
    def judgments(who: Principal = Depends(principal),
                  as_of: str | None = Query(None, description="YYYY-MM-DD; default today (Asia/Shanghai)"),
                  known_at: str | None = Query(None, description="ISO 8601; without offset Asia/Shanghai"),
                  unit: list[str] | None = Query(None), rule: list[str] | None = Query(None),
                  status: list[str] | None = Query(None), lang: str = Query("zh", pattern="^(zh|en)$")):
        day, known = _day(as_of, "as_of", today()), _known_at(known_at)
        filters = Filters(units=_many(unit), rules=_many(rule), statuses=_statuses(status))
        now_rows = app.record.fact_rows()
        rows = now_rows if known is None else app.record.fact_rows(known)
        scope = scope_for(app, who, now_rows)
        found = app.compliance.check(day, known, filters, lang=lang, rows=rows)
        return [j.to_json() for j in found if scope.sees_judgment(j)]

    # -- reporting facts -----------------------------------------------------------------------
    facts_example = {"jurisdiction": "shanghai", "events": [
        {"id": "ev-t9", "type": "training-recorded", "date": "2024-03-02", "person": "p-001", "hours": 8,
         "off_job": True}]}

    @r.post("/facts", tags=["facts"], status_code=201,
            summary="Record a facts document (the JSON form of a `metrolex load` file), all or nothing",
            responses={422: {"description": "refused: detail names loc, line, field and record; nothing stored"},
                       403: {"description": "a fact outside the caller's unit; nothing stored"}})
    async def post_facts(request: Request, who: Principal = Depends(writer),
                         body: dict[str, Any] = Body(..., examples=[facts_example])):
        raw = await request.body()
        # The client's own text, so that a refusal's line is a line of what it sent.
        text = raw.decode("utf-8")
        return await run_in_threadpool(record_document, app, who, text)

    def _jurisdiction_of(subject: str) -> str:
        """A document's jurisdiction: that of the unit answerable for its subject."""
        directory = Directory.from_rows(app.record.fact_rows())
        unit = directory.units.get(directory.unit_of(subject) or "", {})
        return unit.get("jurisdiction", "shanghai")

    @r.post("/training", tags=["facts"], status_code=201, summary="Report training (a training-recorded event)")
    def post_training(body: TrainingIn, who: Principal = Depends(writer)):
        event = {"type": "training-recorded", **body.model_dump()}
        return record_document(app, who, one_event(_jurisdiction_of(body.person), event), _flat_loc())

    @r.post("/comparisons", tags=["facts"], status_code=201,
            summary="Report a comparison organized as lead laboratory (comparison-organized)")
    def post_comparison(body: ComparisonIn, who: Principal = Depends(writer)):
        event = {"type": "comparison-organized", **body.model_dump()}
        return record_document(app, who, one_event(_jurisdiction_of(body.unit), event), _flat_loc())

    @r.post("/centers/{center}/events", tags=["facts"], status_code=201,
            summary="Report an event of an industrial metrology test center")
    def post_center_event(center: str, body: CenterEventIn, who: Principal = Depends(writer)):
        scope = scope_for(app, who)
        if center not in scope.directory.centers or not scope.sees(center):
            raise _not_found(f"no center {center!r}" + ("" if scope.everything else f" of unit {who.unit!r}"))
        if body.type not in CENTER_EVENTS:
            raise _unprocessable(["body", "type"], f"not a center event type {body.type!r} "
                                                   f"(known: {', '.join(CENTER_EVENTS)})")
        fields = body.model_dump()
        if fields.get("center", center) != center:
            raise _unprocessable(["body", "center"], f"the path names center {center!r}")
        fields["center"] = center
        host = scope.directory.centers[center].get("host")
        jurisdiction = scope.directory.units.get(host or "", {}).get("jurisdiction", "shanghai")
        return record_document(app, who, one_event(jurisdiction, fields), _flat_loc({"center": ["path", "center"]}))

    def _task_event(year: int, number: int, jurisdiction: str, who: Principal, event: dict) -> dict:
        from adapters.plans import show_plan
        plan = show_plan(app.record, year, jurisdiction)
        task = next((t for t in plan["tasks"] if t["number"] == number), None) if plan else None
        if task is None:
            raise _not_found(f"no task {number} in the {jurisdiction} plan for {year}")
        event = {**event, "plan": f"{jurisdiction}-{year}", "task": number}
        return record_document(app, who, one_event(jurisdiction, event),
                               _flat_loc({"plan": ["path", "year"], "task": ["path", "n"]}))

    def _reporting_unit(who: Principal, given: str | None, jurisdiction: str) -> str:
        if given:
            return given
        if who.unit:
            return who.unit
        division_unit = scope_for(app, who).directory.division(jurisdiction)
        if division_unit is None:
            raise _unprocessable(["body", "unit"], "missing (which unit reports)")
        return division_unit

    J = Query("shanghai", pattern="^(shanghai|jiangsu)$")

    @r.post("/plans/{year}/tasks/{n}/progress", tags=["plans"], status_code=201,
            summary="Report progress on a work-plan task (task-progress-reported)")
    def post_progress(year: int, n: int, body: ProgressIn, jurisdiction: str = J,
                      who: Principal = Depends(writer)):
        event = {"type": "task-progress-reported", **body.model_dump()}
        event["unit"] = _reporting_unit(who, body.unit, jurisdiction)
        return _task_event(year, n, jurisdiction, who, event)

    @r.post("/plans/{year}/tasks/{n}/complete", tags=["plans"], status_code=201,
            summary="Report a work-plan task completed (task-completed)")
    def post_complete(year: int, n: int, body: CompleteIn, jurisdiction: str = J,
                      who: Principal = Depends(writer)):
        event = {"type": "task-completed", **body.model_dump()}
        event["unit"] = _reporting_unit(who, body.unit, jurisdiction)
        return _task_event(year, n, jurisdiction, who, event)

    @r.post("/plans/{year}/tasks/{n}/reassign", tags=["plans"], status_code=201,
            summary="Re-assign a task's lead and supporting units (division)")
    def post_reassign(year: int, n: int, body: ReassignIn, jurisdiction: str = J,
                      who: Principal = Depends(division)):
        return _task_event(year, n, jurisdiction, who, {"type": "task-reassigned", **body.model_dump()})

    @r.post("/plans/{year}/tasks/{n}/milestones", tags=["plans"], status_code=201,
            summary="Set a time node (时间节点) of a task (division)")
    def post_milestone(year: int, n: int, body: MilestoneIn, jurisdiction: str = J,
                       who: Principal = Depends(division)):
        return _task_event(year, n, jurisdiction, who, {"type": "task-milestone-set", **body.model_dump()})

    # -- registrations -------------------------------------------------------------------------
    def _registered(who: Principal, table: str) -> list[dict]:
        scope = scope_for(app, who)
        return [v for k, v in sorted(getattr(scope.directory, table).items()) if scope.sees(k)]

    @r.get("/units", tags=["registry"], summary="Registered units (an agency: its own)")
    def units(who: Principal = Depends(principal)):
        return _registered(who, "units")

    @r.get("/people", tags=["registry"], summary="Registered people (an agency: its own)")
    def people(who: Principal = Depends(principal)):
        return _registered(who, "people")

    @r.get("/centers", tags=["registry"], summary="Registered centers (an agency: those it hosts)")
    def centers(who: Principal = Depends(principal)):
        return _registered(who, "centers")

    # -- plans ---------------------------------------------------------------------------------
    @r.get("/plans/{year}", tags=["plans"], summary="A year's work plan (as `metrolex plan show --json`)")
    def get_plan(year: int, jurisdiction: str = J, who: Principal = Depends(principal)):
        from adapters.plans import show_plan
        plan = show_plan(app.record, year, jurisdiction)
        if plan is None:
            raise _not_found(f"no {jurisdiction} plan for {year} in the record")
        scope = scope_for(app, who)
        plan["tasks"] = [t for t in plan["tasks"] if scope.sees_task(t, jurisdiction)]
        return plan

    @r.post("/plans", tags=["plans"], status_code=201,
            summary="Import a work plan document (jurisdiction, year, document, groups, tasks) — division")
    async def post_plan(request: Request, body: dict[str, Any] = Body(...), who: Principal = Depends(division)):
        text = (await request.body()).decode("utf-8")
        return await run_in_threadpool(import_plan_text, app, who, text)

    # -- notices -------------------------------------------------------------------------------
    @r.get("/inbox/{unit}", tags=["notices"], summary="Notices addressed or copied to a unit")
    def inbox(unit: str, who: Principal = Depends(principal)):
        if who.role == "agency" and unit != who.unit:
            raise _forbidden(f"an agency reads only its own inbox ({who.unit})")
        return app.notices.inbox(unit)

    @r.post("/remind", tags=["notices"], summary="Issue the reminders and overdue notices due up to a date (division)")
    def remind(as_of: str | None = Query(None, description="YYYY-MM-DD; default today"),
               who: Principal = Depends(division)):
        result = app.notices.sweep(_day(as_of, "as_of", today()), by=f"api:{who.actor}")
        return {"as_of": result.as_of, "issued": [p.to_json() for p in result.issued],
                "already_issued": result.already, "skipped": result.skipped}

    # -- rules ---------------------------------------------------------------------------------
    @r.get("/rules", tags=["rules"], summary="Every rule version (as `metrolex rules list --json`)")
    def rules(as_of: str | None = None, _: Principal = Depends(principal)):
        versions = app.catalogue.in_force(_day(as_of, "as_of")) if as_of else app.catalogue.versions
        return [v.summary() for v in versions]

    # -- audit ---------------------------------------------------------------------------------
    @r.get("/audit/replay", tags=["audit"], summary="What check said on a date, knowing what was recorded by a time")
    def replay(as_of: str = Query(...), known_at: str | None = None, lang: str = Query("zh", pattern="^(zh|en)$"),
               _: Principal = Depends(reader_of_all)):
        # Streamed: a national replay is hundreds of thousands of judgments, each with the events
        # it rests on; the body is the same JSON a plain response would carry (tested).
        head, judgments = app.compliance.replay_stream(_day(as_of, "as_of"), _known_at(known_at), lang=lang)
        return StreamingResponse(json_object_stream(head, "judgments", judgments), media_type="application/json")

    @r.get("/audit/history/{subject}", tags=["audit"], summary="Every event and notice about a subject, with both times")
    def history(subject: str, _: Principal = Depends(reader_of_all)):
        return {"subject": subject, "events": app.compliance.history(subject),
                "notices": app.notices.issued(subject)}

    @r.get("/audit/explain", tags=["audit"], summary="One judgment: rule, citation, events, computation")
    def explain(as_of: str = Query(...), rule: str = Query(...), subject: str = Query(...),
                period: str | None = None, known_at: str | None = None,
                lang: str = Query("zh", pattern="^(zh|en)$"), _: Principal = Depends(reader_of_all)):
        out = app.compliance.explain(_day(as_of, "as_of"), rule, subject, period, _known_at(known_at), lang)
        if not out:
            raise _not_found(f"no judgment of {rule} for {subject} as of {as_of}")
        return out

    @r.get("/audit/verify", tags=["audit"], summary="Check the record's hash chain (ok false: tampering found)")
    def verify(_: Principal = Depends(reader_of_all)):
        from adapters import audit
        return audit.verify(app.store).as_dict()

    @r.get("/audit/export", tags=["audit"], summary="Compliance report per unit and rule (csv, json or html)")
    def export(as_of: str = Query(...), known_at: str | None = None,
               format: str = Query("json", pattern="^(csv|json|html)$"), _: Principal = Depends(reader_of_all)):
        rows = export_rows(app.compliance.check(_day(as_of, "as_of"), _known_at(known_at)))
        if format == "csv":
            return Response(export_csv(rows), media_type="text/csv; charset=utf-8",
                            headers={"Content-Disposition": f'attachment; filename="metrolex-{as_of}.csv"'})
        if format == "html":
            return Response(dashboard.export_html(rows, as_of), media_type="text/html; charset=utf-8")
        return {"as_of": as_of, "known_at": known_at, "judgments": rows}

    # -- calendar feed -------------------------------------------------------------------------
    @r.get("/calendar/{unit}.ics", tags=["calendar"], response_class=Response,
           summary="iCalendar feed of a unit's open and overdue due dates (token also as ?token=)",
           responses={200: {"content": {"text/calendar": {}}}})
    def calendar(unit: str, who: Principal = Depends(principal),
                 token: str | None = Query(None, description="the bearer token, for calendar programs")):
        if who.role == "agency" and unit != who.unit:
            raise _forbidden(f"an agency subscribes only to its own calendar ({who.unit})")
        rows = app.record.fact_rows()
        directory = Directory.from_rows(rows)
        if unit not in directory.units:
            raise _not_found(f"no unit {unit!r}")
        as_unit = Scope(Principal("agency", unit), directory)
        day = today()
        due = [j for j in app.compliance.check(day, rows=rows)
               if j.status in ("open", "overdue") and as_unit.sees_judgment(j)]
        body = render_ics(unit, directory.name(unit), due, directory, app.clock())
        return Response(body.encode("utf-8"), media_type="text/calendar; charset=utf-8",
                        headers={"Content-Disposition": f'inline; filename="{unit}.ics"',
                                 "Cache-Control": "private, max-age=300"})

    api.include_router(r)
    api.include_router(dashboard.router(app, principal), prefix=DASHBOARD)
    return api


def _store_kind(app: App) -> str:
    return "sqlite" if app.store.is_sqlite else "postgresql"


def shanghai_time(instant: str | None) -> str:
    """A stored commit time (UTC text) as Shanghai wall-clock time for people."""
    if not instant:
        return ""
    return dt.datetime.fromisoformat(instant).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
