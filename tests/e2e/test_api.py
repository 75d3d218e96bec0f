"""The HTTP API end to end: a real SQLite store, the facts of CONTRACT.md loaded as a file, real
tokens, FastAPI's TestClient in front of `adapters.api.create_app`."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from adapters.api import create_app, ics_fold, ics_text
from adapters.bootstrap import bootstrap
from adapters.facts_file import read_facts_file
from adapters.plans import bundled_path, import_plan
from adapters.tokens import create_token

FACTS = """\
jurisdiction: shanghai
units:
  - {id: sh-jlc, name: 市局计量处, kind: regulator}
  - {id: sh-zjy, name: 上海市质量监督检验技术研究院, kind: institute, lead_lab_since: 2023-01-01}
  - {id: sh-pd-jls, name: 浦东新区计量所, kind: district-institute, lead_lab_since: 2020-01-01}
people:
  - {id: p-001, name: 王芳, unit: sh-pd-jls, duties: [mandatory-verification], since: 2022-05-01}
  - {id: p-002, name: 赵磊, unit: sh-zjy, duties: [mandatory-verification], since: 2021-09-01}
centers:
  - {id: c-icv, name: 上海市智能网联汽车产业计量测试中心, host: sh-zjy}
events:
  - {id: ev-t1, type: training-recorded, date: 2023-03-02, person: p-001, hours: 8, off_job: true}
  - {id: ev-t2, type: training-recorded, date: 2023-03-02, person: p-001, hours: 8, off_job: true}
  - {type: event-retracted, date: 2023-04-01, retracts: ev-t2, reason: 重复录入}
  - {type: comparison-organized, date: 2023-06-10, unit: sh-zjy, subject: 压力表}
  - {type: center-approved, date: 2023-06-01, center: c-icv, construction_years: 2}
  - {id: ev-me1, type: center-major-event, date: 2023-09-28, center: c-icv, summary: 主任变更}
  - {type: center-major-event-notified, date: 2023-10-09, center: c-icv, refers_to: ev-me1}
  - {type: center-annual-report-filed, date: 2023-11-29, center: c-icv, year: 2023}
  - {type: exchange-activity-held, date: 2023-08-01, center: c-icv}
"""
AS_OF = "2024-12-31"
JSON_BODY = {"Content-Type": "application/json"}

# Every route of the API but health, with a request that would be valid but for the missing token.
ROUTES = [
    ("GET", "/api/v1/judgments?as_of=2024-12-31"),
    ("POST", "/api/v1/facts"),
    ("POST", "/api/v1/training"),
    ("POST", "/api/v1/comparisons"),
    ("POST", "/api/v1/centers/c-icv/events"),
    ("POST", "/api/v1/plans/2023/tasks/1/progress"),
    ("POST", "/api/v1/plans/2023/tasks/1/complete"),
    ("POST", "/api/v1/plans/2023/tasks/1/reassign"),
    ("POST", "/api/v1/plans/2023/tasks/1/milestones"),
    ("GET", "/api/v1/units"),
    ("GET", "/api/v1/people"),
    ("GET", "/api/v1/centers"),
    ("GET", "/api/v1/plans/2023"),
    ("POST", "/api/v1/plans"),
    ("GET", "/api/v1/inbox/sh-pd-jls"),
    ("POST", "/api/v1/remind?as_of=2024-12-31"),
    ("GET", "/api/v1/rules"),
    ("GET", "/api/v1/audit/replay?as_of=2024-12-31"),
    ("GET", "/api/v1/audit/history/p-001"),
    ("GET", "/api/v1/audit/explain?as_of=2024-12-31&rule=training-hours&subject=p-001"),
    ("GET", "/api/v1/audit/verify"),
    ("GET", "/api/v1/audit/export?as_of=2024-12-31&format=csv"),
    ("GET", "/api/v1/calendar/sh-pd-jls.ics"),
    ("GET", "/api/v1/no-such-path"),
    ("GET", "/dashboard"),
    ("GET", "/dashboard/plan/2023"),
    ("GET", "/dashboard/timeline/p-001"),
]

# Every write, with a body that the division could record.
WRITES = [
    ("/api/v1/facts", {"events": [{"type": "training-recorded", "date": "2024-03-01", "person": "p-001",
                                   "hours": 16, "off_job": True}]}),
    ("/api/v1/training", {"person": "p-001", "date": "2024-03-01", "hours": 16, "off_job": True}),
    ("/api/v1/comparisons", {"unit": "sh-pd-jls", "date": "2024-05-01", "subject": "压力表"}),
    ("/api/v1/centers/c-icv/events", {"type": "exchange-activity-held", "date": "2024-05-01"}),
    ("/api/v1/plans/2023/tasks/1/progress", {"date": "2023-05-01", "text": "印发任务分工", "unit": "sh-jlc"}),
    ("/api/v1/plans/2023/tasks/1/complete", {"date": "2023-12-01", "unit": "sh-jlc"}),
    ("/api/v1/plans/2023/tasks/1/reassign", {"date": "2023-05-01", "leads": ["市局计量处"]}),
    ("/api/v1/plans/2023/tasks/1/milestones", {"date": "2023-05-01", "name": "宣贯", "due": "2023-06-30"}),
    ("/api/v1/plans", {"jurisdiction": "shanghai", "year": 2024, "tasks": [{"number": 1, "title": "示例", "leads": ["市局计量处"]}]}),
    ("/api/v1/remind?as_of=2024-12-31", None),
]


@pytest.fixture(scope="module")
def bundled():
    """The bundled rule files and working-day calendar, parsed once for the module."""
    from rules.calendar import WorkdayCalendar
    from rules.catalogue import Catalogue
    return Catalogue.bundled(), WorkdayCalendar.bundled()


@pytest.fixture
def world(tmp_path, clock, bundled):
    """A store holding the contract's facts and the 2023 plan; today is 2024-01-05 in Shanghai."""
    catalogue, calendar = bundled
    app = bootstrap(store_url=f"sqlite:///{tmp_path}/t.db", engine="reference", clock=clock,
                    catalogue=catalogue, calendar=calendar)
    facts = tmp_path / "facts.yaml"
    facts.write_text(FACTS, encoding="utf-8")
    app.record.load(read_facts_file(facts))
    import_plan(app.record, bundled_path("shanghai-2023"))
    tokens = {"division": create_token(app.store, "division", None),
              "auditor": create_token(app.store, "auditor", None),
              "pudong": create_token(app.store, "agency", "sh-pd-jls"),
              "zjy": create_token(app.store, "agency", "sh-zjy")}
    with TestClient(create_app(app)) as client:
        yield app, client, tokens
    app.close()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def call(client, method: str, path: str, token: str | None = None, body=None):
    headers = bearer(token) if token else {}
    if method == "GET":
        return client.get(path, headers=headers, follow_redirects=False)
    return client.post(path, headers=headers, json=body if body is not None else {})


# -- the description and the door ------------------------------------------------------------------
def test_openapi_is_public_but_the_data_is_not(world):
    client = world[1]
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/api/v1/judgments").status_code == 401


def test_openapi_describes_the_api_under_api_v1(world):
    _, client, tokens = world
    spec = client.get("/openapi.json", headers=bearer(tokens["auditor"])).json()
    paths = set(spec["paths"])
    assert {"/api/v1/health", "/api/v1/judgments", "/api/v1/facts", "/api/v1/training", "/api/v1/calendar/{unit}.ics",
            "/api/v1/audit/replay", "/api/v1/plans/{year}/tasks/{n}/progress"} <= paths
    assert all(p.startswith("/api/v1/") for p in paths)
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert spec["paths"]["/api/v1/judgments"]["get"]["security"] == [{"HTTPBearer": []}]


def test_health_needs_no_token(world):
    _, client, _ = world
    r = client.get("/api/v1/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "store": "sqlite"}


@pytest.mark.parametrize("method,path", ROUTES, ids=[f"{m} {p.split('?')[0]}" for m, p in ROUTES])
def test_every_other_path_needs_a_token(world, method, path):
    _, client, _ = world
    r = call(client, method, path)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer mx_not-a-token", "Basic dXNlcjpwYXNz", "Bearer"])
def test_a_bad_token_is_refused(world, header):
    _, client, _ = world
    assert client.get("/api/v1/rules", headers={"Authorization": header}).status_code == 401


def test_the_route_table_above_covers_every_route(world):
    app, _, _ = world
    routes = {(m, r.path) for r in create_app(app).routes if isinstance(r, APIRoute) for m in r.methods}
    listed = {(m, p.split("?")[0]) for m, p in ROUTES}

    def covered(method: str, template: str) -> bool:
        import re
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template.replace(".", r"\.")) + "$"
        return any(m == method and re.match(pattern, p) for m, p in listed)

    missing = [(m, p) for m, p in routes if p not in ("/api/v1/health", "/openapi.json") and not p.endswith("/logout")
               and not (p == "/dashboard/" and covered(m, "/dashboard")) and not covered(m, p)]
    assert not missing, f"add these routes to ROUTES: {missing}"


# -- roles ---------------------------------------------------------------------------------------------
def test_an_agency_reads_only_its_own_inbox(world):
    _, client, tokens = world
    assert client.get("/api/v1/inbox/sh-zjy", headers=bearer(tokens["pudong"])).status_code == 403
    assert client.get("/api/v1/inbox/sh-pd-jls", headers=bearer(tokens["pudong"])).status_code == 200
    assert client.get("/api/v1/inbox/sh-zjy", headers=bearer(tokens["auditor"])).status_code == 200


def test_an_agency_cannot_report_training_for_a_person_of_another_unit(world):
    app, client, tokens = world
    before = app.record.fact_rows()
    r = client.post("/api/v1/training", headers=bearer(tokens["pudong"]),
                    json={"person": "p-002", "date": "2024-03-01", "hours": 16, "off_job": True})
    assert r.status_code in (403, 422)
    doc = {"events": [{"type": "training-recorded", "date": "2024-03-01", "person": "p-001", "hours": 8, "off_job": True},
                      {"type": "training-recorded", "date": "2024-03-01", "person": "p-002", "hours": 8, "off_job": True}]}
    r = client.post("/api/v1/facts", headers=bearer(tokens["pudong"]), json=doc)
    assert r.status_code == 403 and "p-002" in r.json()["detail"]
    r = client.post("/api/v1/facts", headers=bearer(tokens["pudong"]),
                    json={"people": [{"id": "p-9", "name": "李明", "unit": "sh-pd-jls", "duties": ["other"]}]})
    assert r.status_code == 403
    r = client.post("/api/v1/facts", headers=bearer(tokens["pudong"]),
                    json={"events": [{"type": "event-retracted", "date": "2024-03-01", "retracts": "person:p-001"}]})
    assert r.status_code == 403  # nor undo a registration
    assert app.record.fact_rows() == before


def test_an_agency_reports_its_own_facts(world):
    app, client, tokens = world
    r = client.post("/api/v1/training", headers=bearer(tokens["pudong"]),
                    json={"person": "p-001", "date": "2024-03-01", "hours": 16, "off_job": True, "course": "计量法规"})
    assert r.status_code == 201, r.text
    row = next(x for x in app.record.fact_rows() if x["fact_id"] == r.json()["ids"][0])
    assert row["fields"]["course"] == "计量法规"
    assert row["recorded_at"]  # the store's commit time, not the client's


def test_an_agency_cannot_take_the_divisions_decisions(world):
    app, client, tokens = world
    before = app.record.fact_rows()
    r = client.post("/api/v1/centers/c-icv/events", headers=bearer(tokens["zjy"]),
                    json={"type": "center-accepted", "date": "2024-05-20"})
    assert r.status_code == 403
    r = client.post("/api/v1/centers/c-icv/events", headers=bearer(tokens["pudong"]),
                    json={"type": "exchange-activity-held", "date": "2024-05-20"})
    assert r.status_code == 404  # not its center: its existence is not revealed
    r = client.post("/api/v1/plans/2023/tasks/5/progress", headers=bearer(tokens["pudong"]),
                    json={"date": "2023-05-01", "text": "进展"})
    assert r.status_code == 403  # task 5 names neither it nor a collective it belongs to
    r = client.post("/api/v1/plans/2023/tasks/1/complete", headers=bearer(tokens["pudong"]),
                    json={"date": "2023-05-01"})
    assert r.status_code == 403  # a supporting unit reports progress; the lead completes
    assert app.record.fact_rows() == before


def test_an_agency_works_on_the_tasks_that_name_it(world):
    _, client, tokens = world
    # task 1: supporting 各法定计量技术机构, which includes the district metrology institutes
    tasks = client.get("/api/v1/plans/2023", headers=bearer(tokens["pudong"])).json()["tasks"]
    assert 1 in [t["number"] for t in tasks] and 5 not in [t["number"] for t in tasks]
    r = client.post("/api/v1/plans/2023/tasks/1/progress", headers=bearer(tokens["pudong"]),
                    json={"date": "2023-05-01", "text": "开展宣贯"})
    assert r.status_code == 201, r.text
    task = client.get("/api/v1/plans/2023", headers=bearer(tokens["division"])).json()["tasks"][0]
    assert task["progress"][-1]["unit"] == "sh-pd-jls"


@pytest.mark.parametrize("path,body", WRITES, ids=[p.split("?")[0] for p, _ in WRITES])
def test_an_auditor_cannot_write(world, path, body):
    app, client, tokens = world
    before = app.record.fact_rows()
    r = client.post(path, headers=bearer(tokens["auditor"]), json=body if body is not None else {})
    assert r.status_code == 403
    assert app.record.fact_rows() == before


@pytest.mark.parametrize("path,body", WRITES, ids=[p.split("?")[0] for p, _ in WRITES])
def test_the_division_can_write(world, path, body):
    _, client, tokens = world
    r = client.post(path, headers=bearer(tokens["division"]), json=body if body is not None else {})
    assert r.status_code in (200, 201), r.text


def test_an_agency_reads_only_its_own_obligations(world):
    _, client, tokens = world
    mine = client.get(f"/api/v1/judgments?as_of={AS_OF}", headers=bearer(tokens["pudong"])).json()
    assert mine and {j["subject"] for j in mine} <= {"sh-pd-jls", "p-001"}
    everything = client.get(f"/api/v1/judgments?as_of={AS_OF}", headers=bearer(tokens["auditor"])).json()
    assert {"c-icv", "p-002", "sh-zjy"} <= {j["subject"] for j in everything}
    assert [p["id"] for p in client.get("/api/v1/people", headers=bearer(tokens["pudong"])).json()] == ["p-001"]
    assert [c["id"] for c in client.get("/api/v1/centers", headers=bearer(tokens["zjy"])).json()] == ["c-icv"]
    assert client.get("/api/v1/centers", headers=bearer(tokens["pudong"])).json() == []
    assert client.get("/api/v1/audit/verify", headers=bearer(tokens["pudong"])).status_code == 403


# -- facts in ----------------------------------------------------------------------------------------------
def test_a_bad_facts_body_is_refused_naming_the_field_and_nothing_is_stored(world):
    app, client, tokens = world
    before = app.record.fact_rows()
    text = ('{"events": [\n'
            '  {"type": "training-recorded", "date": "2024-03-01", "person": "p-001", "hours": 8, "off_job": true},\n'
            '  {"type": "training-recorded", "date": "2024-03-02", "person": "p-001", "hours": -8, "off_job": true}\n'
            ']}')
    r = client.post("/api/v1/facts", headers=bearer(tokens["division"]) | JSON_BODY, content=text.encode())
    assert r.status_code == 422
    [problem] = r.json()["detail"]
    assert problem["loc"] == ["body", "events", 1, "hours"]
    assert problem["field"] == "hours" and problem["line"] == 3 and problem["record"] == "events[1]"
    assert "negative" in problem["msg"]
    r = client.post("/api/v1/training", headers=bearer(tokens["division"]),
                    json={"person": "p-001", "date": "2024-02-30", "hours": 8, "off_job": True})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "date"]
    r = client.post("/api/v1/facts", headers=bearer(tokens["division"]), json={"evnets": []})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "evnets"
    r = client.post("/api/v1/facts", headers=bearer(tokens["division"]),
                    json={"events": [{"type": "training-recorded", "date": "2024-03-01", "person": "p-404",
                                      "hours": 8, "off_job": True}]})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "person"
    assert app.record.fact_rows() == before


def test_the_division_posts_training_and_the_judgment_shows_it(world):
    app, client, tokens = world
    query = f"/api/v1/judgments?as_of={AS_OF}&rule=training-hours&unit=p-001"
    before = [j for j in client.get(query, headers=bearer(tokens["division"])).json() if j["period"] == "2024"]
    assert [j["status"] for j in before] == ["open"]
    r = client.post("/api/v1/training", headers=bearer(tokens["division"]),
                    json={"person": "p-001", "date": "2024-03-01", "hours": 16, "off_job": True})
    assert r.status_code == 201 and r.json()["recorded"] == 1
    again = client.post("/api/v1/training", headers=bearer(tokens["division"]),
                        json={"person": "p-001", "date": "2024-03-01", "hours": 16, "off_job": True})
    assert again.json()["recorded"] == 0 and again.json()["already_recorded"] == 1  # a retried POST is a no-op
    after = client.get(query, headers=bearer(tokens["division"])).json()
    [j] = [j for j in after if j["period"] == "2024"]
    assert j["status"] == "met" and j["satisfied_on"] == "2024-03-01"
    # the same objects as `metrolex check --json`
    cli = [x.to_json() for x in app.compliance.check(dt.date(2024, 12, 31))
           if x.rule == "training-hours" and x.subject == "p-001"]
    assert after == json.loads(json.dumps(cli, ensure_ascii=False))


def test_bad_query_dates_are_422(world):
    _, client, tokens = world
    r = client.get("/api/v1/judgments?as_of=2024-13-01", headers=bearer(tokens["division"]))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "as_of"]
    r = client.get("/api/v1/audit/replay?as_of=2024-01-01&known_at=yesterday", headers=bearer(tokens["auditor"]))
    assert r.status_code == 422


def test_plans_and_tasks(world):
    _, client, tokens = world
    plan = client.get("/api/v1/plans/2023", headers=bearer(tokens["auditor"])).json()
    assert len(plan["tasks"]) == 17 and plan["tasks"][0]["leads"] == ["市局计量处"]
    r = client.post("/api/v1/plans/2023/tasks/1/progress", headers=bearer(tokens["division"]),
                    json={"date": "2023-05-01", "text": "印发任务分工"})
    assert r.status_code == 201
    assert client.post("/api/v1/plans/2023/tasks/99/complete", headers=bearer(tokens["division"]),
                       json={"date": "2023-05-01"}).status_code == 404
    r = client.post("/api/v1/plans", headers=bearer(tokens["division"]),
                    json={"jurisdiction": "shanghai", "year": 2024, "tasks": [{"number": 1, "title": "x"}]})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "leads"


def test_reported_progress_shows_on_the_plan(world):
    _, client, tokens = world
    r = client.post("/api/v1/plans/2023/tasks/1/progress", headers=bearer(tokens["division"]),
                    json={"date": "2023-05-01", "text": "印发任务分工"})
    assert r.status_code == 201
    task = client.get("/api/v1/plans/2023", headers=bearer(tokens["division"])).json()["tasks"][0]
    assert task["status"] == "in-progress" and task["progress"][0]["unit"] == "sh-jlc"


# -- calendar --------------------------------------------------------------------------------------------------
def unfold(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")


def test_the_calendar_feed_is_icalendar(world):
    app, client, tokens = world
    r = client.get(f"/api/v1/calendar/sh-pd-jls.ics?token={tokens['pudong']}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/calendar")
    raw = r.content
    assert raw.startswith(b"BEGIN:VCALENDAR\r\n") and raw.endswith(b"END:VCALENDAR\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    assert all(len(line) <= 75 for line in raw.split(b"\r\n"))
    lines = unfold(raw.decode("utf-8"))
    assert "VERSION:2.0" in lines and any(x.startswith("PRODID:") for x in lines)
    due = [j for j in app.compliance.check(dt.date(2024, 1, 5))
           if j.status in ("open", "overdue") and (j.unit == "sh-pd-jls" or j.subject == "sh-pd-jls")]
    assert due  # today (the test clock) is 2024-01-05
    assert lines.count("BEGIN:VEVENT") == lines.count("END:VEVENT") == len(due)
    uids = {x[4:] for x in lines if x.startswith("UID:")}
    assert {f"{j.rule}|{j.subject}|{j.period}" for j in due} == uids
    starts = {x.split(":", 1)[1] for x in lines if x.startswith("DTSTART;VALUE=DATE:")}
    assert starts == {j.due.replace("-", "") for j in due}
    summaries = [x for x in lines if x.startswith("SUMMARY:")]
    assert all("截止" in s for s in summaries)
    assert client.get(f"/api/v1/calendar/sh-zjy.ics?token={tokens['pudong']}").status_code == 403
    assert client.get("/api/v1/calendar/sh-zjy.ics", headers=bearer(tokens["division"])).status_code == 200
    assert client.get("/api/v1/calendar/nobody.ics", headers=bearer(tokens["division"])).status_code == 404
    # the token in the query is for calendar programs only
    assert client.get(f"/api/v1/rules?token={tokens['division']}").status_code == 401


def test_icalendar_text_is_escaped_and_folded():
    assert ics_text("a,b;c\\d\ne") == "a\\,b\\;c\\\\d\\ne"
    line = "SUMMARY:" + "计量比对" * 30
    folded = ics_fold(line)
    parts = folded.encode("utf-8").split(b"\r\n")
    assert all(len(p) <= 75 for p in parts) and all(p.startswith(b" ") for p in parts[1:])
    assert folded.replace("\r\n ", "") == line


# -- dashboard ----------------------------------------------------------------------------------------------------
def test_the_dashboard_shows_the_compliance_matrix(world):
    _, client, tokens = world
    r = client.get(f"/dashboard?as_of={AS_OF}&token={tokens['division']}", follow_redirects=False)
    assert r.status_code == 303 and "token" not in r.headers["location"]
    assert "httponly" in r.headers["set-cookie"].lower()
    page = client.get(r.headers["location"]).text  # the cookie now carries the token
    assert '<html lang="zh-CN">' in page
    assert 'id="compliance-matrix"' in page
    for unit in ("sh-jlc", "sh-zjy", "sh-pd-jls"):
        assert f'<tr data-unit="{unit}">' in page
    assert 'class="cell s-breached"' in page and 'class="cell s-met"' in page
    assert 'id="overdue-list"' in page
    assert client.get("/dashboard/plan/2023").status_code == 200
    timeline = client.get("/dashboard/timeline/p-001").text
    assert "ev-t1" in timeline and "已被" in timeline  # ev-t2 was retracted


def test_an_agency_sees_only_its_own_row(world):
    _, client, tokens = world
    page = client.get(f"/dashboard?as_of={AS_OF}", headers=bearer(tokens["pudong"])).text
    assert '<tr data-unit="sh-pd-jls">' in page
    assert 'data-unit="sh-zjy"' not in page and "c-icv" not in page
    assert client.get("/dashboard/timeline/p-002", headers=bearer(tokens["pudong"])).status_code == 404


def test_the_replay_is_streamed_as_the_same_json_a_plain_response_would_carry(world):
    from fastapi.responses import JSONResponse

    app, client, tokens = world
    for query in ("as_of=2024-12-31", "as_of=2024-06-30&lang=en", "as_of=2019-01-01"):
        r = client.get(f"/api/v1/audit/replay?{query}", headers=bearer(tokens["auditor"]))
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        params = dict(p.split("=") for p in query.split("&"))
        whole = app.compliance.replay(dt.date.fromisoformat(params["as_of"]), None, lang=params.get("lang", "zh"))
        assert r.content == JSONResponse(whole).body
        assert r.json()["judgments"] == whole["judgments"]


def test_a_json_object_streams_in_chunks_and_reads_back_whole():
    from adapters.api import json_object_stream

    items = [{"n": i, "text": "计量,\"quoted\"\n"} for i in range(7)]
    chunks = list(json_object_stream({"as_of": "2024-01-01", "x": None}, "items", iter(items), batch=3))
    assert len(chunks) > 2
    assert json.loads(b"".join(chunks)) == {"as_of": "2024-01-01", "x": None, "items": items}
    assert json.loads(b"".join(json_object_stream({}, "items", iter([])))) == {"items": []}
