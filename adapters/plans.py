"""Annual work plans (工作要点): import from a data file that transcribes the document, show.

A plan file has jurisdiction, year, document, groups and tasks (number, group, title, text,
leads, supporting, milestones). The 2023 Shanghai work points ship as `shanghai-2023`.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from adapters.facts_file import FileError, _plain, _yaml, fast_yaml, yaml_text
from adapters.gcpause import paused_gc
from adapters.record import LoadResult, RecordService
from domain.facts import Fact
from ruamel.yaml.error import MarkedYAMLError

BUNDLED = {"shanghai-2023": "bundled/plans/shanghai-2023.yaml"}


def bundled_path(name: str) -> Path:
    if name not in BUNDLED:
        raise FileError(name, f"no bundled plan {name!r} (bundled: {', '.join(BUNDLED)})")
    return Path(str(resources.files("adapters").joinpath(BUNDLED[name])))


def read_plan(path: Path) -> Fact:
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileError(name, "no such file") from None
    text = yaml_text(name, text)
    plain = fast_yaml(text)
    if plain is not None:
        try:
            return _plan_fact(name, plain, is_plain=True)
        except FileError:
            pass  # read it again with the round-trip reader, which knows the lines
    try:
        doc = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise FileError(name, f"broken YAML: {exc.problem}", line=mark.line + 1 if mark else None) from None
    return _plan_fact(name, doc)


def _plan_fact(name: str, doc: Any, is_plain: bool = False) -> Fact:
    """Checks a plan document (ruamel's, with lines, or plain Python from the fast reader:
    `is_plain`) and makes its plan-published fact."""
    if not isinstance(doc, dict):
        raise FileError(name, "a plan file is a mapping with jurisdiction, year, document, groups, tasks", line=1)

    def line(node: Any, key: str | None = None) -> int | None:
        try:
            return (node.lc.key(key)[0] if key else node.lc.line) + 1
        except Exception:
            return None

    for key in doc:
        if key not in ("jurisdiction", "year", "document", "groups", "tasks"):
            raise FileError(name, f"unknown key {key!r}", line=line(doc, key), field_name=key)
    jurisdiction = doc.get("jurisdiction")
    if jurisdiction not in ("shanghai", "jiangsu"):
        raise FileError(name, f"jurisdiction must be shanghai or jiangsu, got {jurisdiction!r}",
                        line=line(doc, "jurisdiction") or 1, field_name="jurisdiction")
    year = doc.get("year")
    if not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 2100:
        raise FileError(name, f"year must be a year like 2023, got {year!r}", line=line(doc, "year") or 1,
                        field_name="year")
    tasks = doc.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise FileError(name, "tasks must be a non-empty list", line=line(doc, "tasks") or 1, field_name="tasks")
    numbers = set()
    for i, task in enumerate(tasks):
        where = f"tasks[{i}]"
        if not isinstance(task, dict):
            raise FileError(name, "a task is a mapping", line=line(tasks), record=where)
        for key in task:
            if key not in ("number", "group", "title", "text", "leads", "supporting", "milestones"):
                raise FileError(name, f"unknown key {key!r}", line=line(task, key), record=where, field_name=key)
        for key in ("number", "title", "leads"):
            if task.get(key) in (None, "", []):
                raise FileError(name, f"missing {key}", line=line(task), record=where, field_name=key)
        if not isinstance(task["number"], int) or task["number"] in numbers:
            raise FileError(name, f"task number must be a unique whole number, got {task['number']!r}",
                            line=line(task, "number"), record=where, field_name="number")
        numbers.add(task["number"])
        for key in ("leads", "supporting"):
            value = task.get(key, [])
            if not isinstance(value, list) or not all(isinstance(u, str) and u.strip() for u in value):
                raise FileError(name, f"{key} must be a list of unit names", line=line(task, key),
                                record=where, field_name=key)
    plain = doc if is_plain else _plain(doc)
    key = f"{jurisdiction}-{year}"
    document = {k: str(v) for k, v in (plain.get("document") or {}).items()}
    fields = {"key": key, "jurisdiction": jurisdiction, "year": year, "document": document,
              "groups": plain.get("groups") or [],
              "tasks": [{"number": t["number"], "group": str(t.get("group", "")), "title": t["title"],
                         "text": t.get("text", ""), "leads": t["leads"], "supporting": t.get("supporting", []),
                         "milestones": t.get("milestones", [])} for t in plain["tasks"]]}
    return Fact(f"plan:{key}", "plan-published", fields)


def import_plan(record: RecordService, path: Path, actor: str = "cli") -> tuple[Fact, LoadResult]:
    # (reading a plan makes tens of thousands of objects and no reference cycles: with the
    # collector running, they set off collections that walk the whole process — in the bench a
    # full one, ~80 ms, during one of its three plans; see adapters.gcpause)
    with paused_gc():
        fact = read_plan(path)
        return fact, record.record_facts([fact], str(path), actor, fact.fields["jurisdiction"])


def show_plan(record: RecordService, year: int, jurisdiction: str = "shanghai") -> dict | None:
    rows = record.fact_rows()
    key = f"{jurisdiction}-{year}"
    retracted = {r["refers"] for r in rows if r["type"] == "event-retracted"}
    plan = next((r["fields"] for r in rows if r["type"] == "plan-published" and r["fields"]["key"] == key
                 and r["fact_id"] not in retracted), None)
    if plan is None:
        return None
    tasks = {t["number"]: dict(t) for t in plan["tasks"]}
    for r in rows:
        if r["fact_id"] in retracted or r["subject"] != key:
            continue
        f = r["fields"]
        task = tasks.get(int(f.get("task", -1)))
        if task is None:
            continue
        if r["type"] == "task-reassigned":
            task["leads"], task["supporting"] = f["leads"], f.get("supporting", [])
        elif r["type"] == "task-milestone-set":
            task.setdefault("milestones_set", []).append({"name": f["name"], "due": f["due"]})
        elif r["type"] == "task-progress-reported":
            task.setdefault("progress", []).append({"date": f["date"], "unit": f["unit"], "text": f["text"]})
        elif r["type"] == "task-completed":
            task["completed_on"] = f["date"]
    out_tasks = []
    for n in sorted(tasks):
        t = tasks[n]
        t["status"] = "completed" if t.get("completed_on") else ("in-progress" if t.get("progress") else "assigned")
        out_tasks.append(t)
    return {"year": year, "jurisdiction": jurisdiction, "document": plan.get("document", {}),
            "groups": plan.get("groups", []), "tasks": out_tasks}
