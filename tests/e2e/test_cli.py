"""The command line as a user (or the division's scripts) runs it, through bootstrap."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

CONTRACT_RULES = {"training-hours", "comparison-cycle", "center-annual-report", "center-major-event",
                  "center-exchange-activities", "center-construction-period", "center-rectification"}


@pytest.fixture
def cli(tmp_path):
    env = dict(os.environ, METROLEX_STORE=f"sqlite:///{tmp_path}/metrolex.db", NO_COLOR="1")

    def run(*args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "adapters.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        if expect is not None:
            assert proc.returncode == expect, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
        return proc
    run.db = tmp_path / "metrolex.db"
    run.dir = tmp_path
    return run


def _db_digest(db: Path) -> str:
    """Every row of every table: the record byte for byte as SQLite returns it."""
    h = hashlib.sha256()
    conn = sqlite3.connect(db)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"):
        for row in conn.execute(f"SELECT * FROM {name} ORDER BY 1"):
            h.update(repr(row).encode())
    conn.close()
    return h.hexdigest()


def test_load_the_contract_example_twice(cli, contract_example):
    first = cli("load", str(contract_example))
    assert "24 recorded" in first.stdout
    before = _db_digest(cli.db)
    second = cli("load", str(contract_example), "--json")
    assert json.loads(second.stdout)["loaded"][0]["recorded"] == 0
    assert _db_digest(cli.db) == before


BAD = {
    "unknown type": ("events:\n  - {type: training-done, date: 2023-01-01, person: p-001}\n", "unknown event type", ":2"),
    "unknown reference": ("events:\n  - {type: training-recorded, date: 2023-01-01, person: p-999, hours: 4, off_job: true}\n",
                          "unknown person 'p-999'", ":2"),
    "impossible date": ("events:\n  - {type: comparison-organized, date: 2023-02-30, unit: sh-zjy}\n", "not a real calendar date", ":2"),
    "negative hours": ("events:\n  - {type: training-recorded, date: 2023-01-01, person: p-001, hours: -2, off_job: true}\n",
                       "negative", ":2"),
    "broken YAML": ("events:\n  - {type: comparison-organized, date: 2023-02-03, unit: sh-zjy\n", "broken YAML", ":"),
    "a bad record after good ones": (
        "events:\n  - {type: comparison-organized, date: 2023-07-01, unit: sh-zjy}\n"
        "  - {type: training-recorded, date: 2023-08-01, person: p-001, hours: 4, off_job: true}\n"
        "  - {type: center-accepted, date: 2023-09-01, center: c-nowhere}\n", "unknown center 'c-nowhere'", ":4"),
    "unknown key": ("people:\n  - {id: p-9, name: 某人, unit: sh-zjy, duties: [other], shoe_size: 42}\n", "unknown key", ":2"),
    "a yes that is not a boolean": (
        "events:\n  - {type: training-recorded, date: 2023-01-01, person: p-001, hours: 4, off_job: yes}\n", "true or false", ":2"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_exits_2_names_the_place_and_stores_nothing(cli, contract_example, case):
    cli("load", str(contract_example))
    before = _db_digest(cli.db)
    text, words, where = BAD[case]
    bad = cli.dir / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    proc = cli("load", str(bad), expect=2)
    assert words in proc.stderr and f"bad.yaml{where}" in proc.stderr, proc.stderr
    assert _db_digest(cli.db) == before


def test_loading_stops_at_the_first_refused_file_and_says_what_was_loaded(cli, contract_example):
    bad = cli.dir / "bad.json"
    bad.write_text('{"events": [{"type": "nope", "date": "2023-01-01"}]}', encoding="utf-8")
    later = cli.dir / "later.yaml"
    later.write_text("units:\n  - {id: u-later, name: 后来, kind: other}\n", encoding="utf-8")
    proc = cli("load", str(contract_example), str(bad), str(later), expect=2)
    assert "loaded before it" in proc.stderr and "contract-example.yaml" in proc.stderr
    rows = sqlite3.connect(cli.db).execute("SELECT count(*) FROM facts WHERE fact_id = 'unit:u-later'").fetchone()
    assert rows == (0,)


def test_plan_show_lists_the_17_tasks_of_the_2023_work_points(cli):
    cli("plan", "import", "--bundled", "shanghai-2023")
    plan = json.loads(cli("plan", "show", "2023", "--json").stdout)
    assert plan["year"] == 2023 and plan["jurisdiction"] == "shanghai"
    assert [t["number"] for t in plan["tasks"]] == list(range(1, 18))
    t1 = plan["tasks"][0]
    assert t1["title"] == "落实国家计量发展规划上海市实施意见" and t1["leads"] == ["市局计量处"]
    assert t1["supporting"][:2] == ["各区市场监管局", "临港新片区市场监管局"]
    assert len(plan["tasks"][1]["leads"]) == 4 and plan["tasks"][1]["supporting"] == []
    again = cli("plan", "import", "--bundled", "shanghai-2023")
    assert "already imported" in again.stdout


def test_check_json_has_the_contract_fields_and_statuses(cli, contract_example):
    cli("load", str(contract_example))
    judgments = json.loads(cli("check", "--as-of", "2024-07-01", "--json").stdout)
    me = [j for j in judgments if j["rule"] == "center-major-event"][0]
    for key in ("rule", "rule_version", "jurisdiction", "subject", "period", "trigger", "due", "status",
                "satisfied_on", "citation", "explanation"):
        assert key in me
    assert (me["trigger"], me["due"], me["status"], me["satisfied_on"]) == ("ev-me1", "2023-10-11", "met", "2023-10-09")
    assert me["citation"]["document"].startswith("沪市监计量〔2023〕213号") and me["citation"]["clause"] == "五(二)"
    assert {j["status"] for j in judgments} >= {"met", "open", "breached"}
    assert cli("check", "--as-of", "2024-07-01", "--fail-on", "breached", expect=1).returncode == 1
    assert cli("check", "--as-of", "2023-10-11", "--rule", "center-major-event", "--fail-on", "overdue").returncode == 0


def test_check_refuses_a_bad_date_with_exit_2(cli):
    proc = cli("check", "--as-of", "2024-13-01", expect=2)
    assert "--as-of" in proc.stderr


def test_remind_twice_issues_nothing_new(cli, contract_example):
    cli("load", str(contract_example))
    first = json.loads(cli("remind", "--as-of", "2024-07-01", "--json").stdout)
    assert first and {n["kind"] for n in first} <= {"reminder", "overdue"}
    assert all(n["rule"] != "center-major-event" for n in first)  # notified on time: nothing to say
    assert any(n["rule"] == "training-hours" and n["subject"] == "p-001" and n["kind"] == "overdue" for n in first)
    assert json.loads(cli("remind", "--as-of", "2024-07-01", "--json").stdout) == []
    assert json.loads(cli("remind", "--as-of", "2024-06-01", "--json").stdout) == []


def test_known_at_sees_the_record_as_it_was(cli, contract_example):
    cli("load", str(contract_example))
    import datetime as dt
    time.sleep(0.05)
    between = dt.datetime.now(dt.timezone.utc).isoformat()
    time.sleep(0.05)
    late = cli.dir / "late.yaml"
    late.write_text("events:\n  - {id: ev-t9, type: training-recorded, date: 2023-05-06, person: p-001, hours: 8, off_job: true}\n",
                    encoding="utf-8")
    cli("load", str(late))

    def p001_2023(*extra):
        js = json.loads(cli("check", "--as-of", "2023-12-31", "--json", "--rule", "training-hours", *extra).stdout)
        return [j for j in js if j["subject"] == "p-001" and j["period"] == "2023"][0]
    assert p001_2023()["status"] == "met"
    assert p001_2023("--known-at", between)["status"] == "open"
    replay = json.loads(cli("audit", "replay", "--as-of", "2023-12-31", "--known-at", between, "--json").stdout)
    assert [j["status"] for j in replay if j["rule"] == "training-hours" and j["subject"] == "p-001"] == ["open"]


def test_audit_verify_passes_then_fails_after_one_byte_is_changed(cli, contract_example):
    cli("load", str(contract_example))
    ok = cli("audit", "verify")
    assert "24 events verified" in ok.stdout
    conn = sqlite3.connect(cli.db)
    state = bytearray(conn.execute("SELECT state FROM record_events WHERE id = 5").fetchone()[0])
    state[3] ^= 0x20
    conn.execute("UPDATE record_events SET state = ? WHERE id = 5", (bytes(state),))
    conn.commit()
    conn.close()
    bad = cli("audit", "verify", expect=1)
    assert "event 5" in bad.stdout


def test_rules_list_names_the_seven_contract_rules_with_citations(cli):
    rules = json.loads(cli("rules", "list", "--json").stdout)
    assert CONTRACT_RULES <= {r["id"] for r in rules}
    for r in rules:
        assert r["citation"]["document"] and r["citation"]["clause"] and r["effective_from"]


def test_rules_validate_reports_lines(cli):
    bad = cli.dir / "rule.yaml"
    bad.write_text("id: x\nversion: one\n", encoding="utf-8")
    proc = cli("rules", "validate", str(bad), expect=2)
    assert "rule.yaml:2" in proc.stderr


def test_token_create_prints_the_token_last(cli):
    proc = cli("token", "create", "--role", "agency", "--unit", "sh-zjy")
    assert proc.stdout.strip().splitlines()[-1].startswith("mx_")
    assert cli("token", "create", "--role", "agency", expect=2).returncode == 2


def test_demo_runs_end_to_end_on_a_fresh_directory(cli):
    proc = cli("demo")
    assert "17 tasks" in proc.stdout and "notices:" in proc.stdout and "obligation instances judged" in proc.stdout
    assert (cli.dir / "metrolex-demo.db").exists()


def test_an_unreachable_store_is_a_clear_error_not_a_traceback(cli):
    proc = cli("--store", "sqlite:////nonexistent/dir/x.db", "check", "--as-of", "2024-01-01", expect=2)
    assert "cannot use the store" in proc.stderr and "Traceback" not in proc.stderr
