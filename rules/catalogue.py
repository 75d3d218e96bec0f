"""Rule files: one YAML file per rule version (OpenFisca style: dated, with the text that sets it).

`parse_rule` validates one file and reports every error with its line; `Catalogue` holds the
versions and answers "which version of each rule is in force on this date".
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from rules.yamltext import fast_yaml

TEMPLATES: dict[str, dict[str, tuple[str, bool]]] = {
    # template: {parameter: (kind, required)}
    "total-per-period": {"fact": ("text", True), "measure": ("text", True), "filter": ("map", False),
                          "threshold": ("number", True), "duties": ("list", True), "prorate": ("bool", True)},
    "count-per-period": {"fact": ("text", True), "threshold": ("int", True), "first_year_counts": ("bool", True)},
    "cycle": {"fact": ("text", True), "years": ("int", True)},
    "annual-deadline-while": {"fact": ("text", True), "month": ("int", True), "day": ("int", True),
                              "match_field": ("text", True)},
    "deadline-after-trigger": {"trigger": ("text", True), "answer": ("text", True), "failure": ("text", False),
                               "working_days": ("int", False), "calendar_days": ("int", False),
                               "deadline_field": ("text", False)},
    "duration-from-start": {"start": ("text", True), "end": ("text", True), "years_field": ("text", True),
                            "default_years": ("int", True)},
    "milestone": {"trigger": ("text", True), "answers": ("list", True)},
    "fixed-deadline": {"due": ("date", True), "fact": ("text", True), "match": ("map", False)},
    "indicator-target": {"fact": ("text", True), "due": ("date", True), "targets": ("list", True)},
}
SUBJECTS = ("person", "lead-lab", "center", "plan-task", "jurisdiction")
JURISDICTIONS = ("shanghai", "jiangsu")


class RuleFileError(Exception):
    def __init__(self, file: str, errors: list[tuple[int | None, str]]) -> None:
        self.file, self.errors = file, errors
        super().__init__("\n".join(f"{file}:{line or '?'}: {msg}" for line, msg in errors))


@dataclass(frozen=True)
class RuleVersion:
    id: str
    version: int
    jurisdiction: str
    title: str
    citation: dict[str, str]
    effective_from: dt.date
    effective_to: dt.date | None
    binds_from: dt.date
    subjects: str
    template: str
    parameters: dict[str, Any]
    reminders: dict[str, Any]
    explanation: dict[str, str]
    choices: tuple[str, ...] = ()
    path: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def in_force(self, day: dt.date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)

    @property
    def short_citation(self) -> dict[str, str]:
        return {"document": self.citation["document"], "clause": self.citation["clause"],
                "quote": self.citation.get("quote", "")}

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "jurisdiction": self.jurisdiction,
                "title": self.title, "template": self.template,
                "effective_from": self.effective_from.isoformat(),
                "effective_to": self.effective_to.isoformat() if self.effective_to else None,
                "effective": {"from": self.effective_from.isoformat(),
                              "to": self.effective_to.isoformat() if self.effective_to else None},
                "binds_instances_due_from": self.binds_from.isoformat(),
                "citation": dict(self.citation), "file": self.path}


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.constructor.add_constructor("tag:yaml.org,2002:timestamp", lambda c, n: str(c.construct_scalar(n)))
    return y


def _line(node: Any, key: str | None = None) -> int | None:
    try:
        if key is not None:
            return node.lc.key(key)[0] + 1
        return node.lc.line + 1
    except Exception:
        return None


def _as_date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    for t in (bool, int, float, str):
        if isinstance(value, t):
            return t(value)
    return value


def parse_rule(text: str, file: str = "<rule>") -> RuleVersion:
    """Validate one rule file; raise RuleFileError listing every error with its line.

    Read by the fast YAML reader where it reads exactly what the round-trip reader reads (every
    command loads the catalogue: 0.6 s of ruamel per start before); a file with any error is
    read again by ruamel, which knows the lines."""
    doc = fast_yaml(text)
    if doc is not None:
        try:
            return _validated(doc, file)
        except RuleFileError:
            pass  # said again below, with the lines
    try:
        doc = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise RuleFileError(file, [(mark.line + 1 if mark else None, f"broken YAML: {exc.problem}")]) from None
    return _validated(doc, file)


def _validated(doc: Any, file: str) -> RuleVersion:
    errors: list[tuple[int | None, str]] = []
    if not isinstance(doc, dict):
        raise RuleFileError(file, [(1, "a rule file is a mapping")])

    def need(node: Any, key: str, kind: type | tuple, where: str = "") -> Any:
        if not isinstance(node, dict) or key not in node or node[key] is None:
            errors.append((_line(node), f"missing {where}{key}"))
            return None
        if not isinstance(node[key], kind) or (kind is int and isinstance(node[key], bool)):
            errors.append((_line(node, key), f"{where}{key} has the wrong type ({type(node[key]).__name__})"))
            return None
        return node[key]

    allowed = {"id", "version", "jurisdiction", "title", "citation", "effective", "binds", "template",
               "parameters", "deadline", "reminders", "explanation", "choices", "references"}
    for key in doc:
        if key not in allowed:
            errors.append((_line(doc, key), f"unknown key {key!r}"))
    rid = need(doc, "id", str)
    version = need(doc, "version", int)
    if isinstance(version, int) and version < 1:
        errors.append((_line(doc, "version"), "version starts at 1"))
    jur = need(doc, "jurisdiction", str)
    if jur is not None and jur not in JURISDICTIONS:
        errors.append((_line(doc, "jurisdiction"), f"unknown jurisdiction {jur!r}"))
    title = need(doc, "title", str)
    citation = need(doc, "citation", dict)
    if citation is not None:
        for k in ("document", "clause", "quote"):
            need(citation, k, str, "citation.")
    eff = need(doc, "effective", dict)
    eff_from = eff_to = binds_from = None
    if eff is not None:
        raw_from = need(eff, "from", str, "effective.")
        if raw_from is not None:
            eff_from = _as_date(raw_from)
            if eff_from is None:
                errors.append((_line(eff, "from"), f"effective.from is not a date: {raw_from!r}"))
        if eff.get("to") is not None:
            eff_to = _as_date(eff["to"])
            if eff_to is None:
                errors.append((_line(eff, "to"), f"effective.to is not a date: {eff['to']!r}"))
        raw_binds = eff.get("binds_instances_due_from")
        binds_from = _as_date(raw_binds) if raw_binds is not None else None
        if raw_binds is not None and binds_from is None:
            errors.append((_line(eff, "binds_instances_due_from"),
                           f"effective.binds_instances_due_from is not a date: {raw_binds!r}"))
        if eff_from and eff_to and eff_to < eff_from:
            errors.append((_line(eff, "to"), "effective.to is before effective.from"))
    binds = need(doc, "binds", dict)
    subjects = need(binds, "subjects", str, "binds.") if binds is not None else None
    if subjects is not None and subjects not in SUBJECTS:
        errors.append((_line(binds, "subjects"), f"unknown subjects {subjects!r} (known: {', '.join(SUBJECTS)})"))
    template = need(doc, "template", str)
    params = need(doc, "parameters", dict)
    if template is not None and template not in TEMPLATES:
        errors.append((_line(doc, "template"), f"unknown template {template!r} (known: {', '.join(TEMPLATES)})"))
    elif template is not None and params is not None:
        spec = TEMPLATES[template]
        for key in params:
            if key not in spec:
                errors.append((_line(params, key), f"unknown parameter {key!r} for template {template}"))
        for key, (kind, required) in spec.items():
            if key not in params or params[key] is None:
                if required:
                    errors.append((_line(params), f"missing parameter {key!r} for template {template}"))
                continue
            v = params[key]
            ok = {"text": isinstance(v, str), "int": isinstance(v, int) and not isinstance(v, bool),
                  "number": isinstance(v, (int, float)) and not isinstance(v, bool),
                  "bool": isinstance(v, bool), "list": isinstance(v, list), "map": isinstance(v, dict),
                  "date": _as_date(v) is not None}[kind]
            if not ok:
                errors.append((_line(params, key), f"parameter {key!r} must be a {kind}, got {v!r}"))
        if template == "deadline-after-trigger":
            ways = [k for k in ("working_days", "calendar_days", "deadline_field") if params.get(k) is not None]
            if len(ways) != 1:
                errors.append((_line(params), "deadline-after-trigger needs exactly one of working_days, "
                                              "calendar_days, deadline_field"))
    reminders = doc.get("reminders") or {}
    if not isinstance(reminders, dict):
        errors.append((_line(doc, "reminders"), "reminders must be a mapping"))
        reminders = {}
    else:
        for key in reminders:
            if key not in ("before_due_days", "overdue_every_days", "escalate_after_days", "escalate_to",
                           "recipients", "copy"):
                errors.append((_line(reminders, key), f"unknown reminders key {key!r}"))
        days = reminders.get("before_due_days", [])
        if not isinstance(days, list) or not all(isinstance(x, int) and x > 0 for x in days):
            errors.append((_line(reminders, "before_due_days"), "before_due_days must be a list of positive days"))
    explanation = need(doc, "explanation", dict)
    if explanation is not None:
        need(explanation, "zh", str, "explanation.")
        need(explanation, "en", str, "explanation.")
    if errors:
        raise RuleFileError(file, errors)
    plain = _plain(doc)
    return RuleVersion(
        id=rid, version=version, jurisdiction=jur, title=title, citation=plain["citation"],
        effective_from=eff_from, effective_to=eff_to, binds_from=binds_from or eff_from,
        subjects=subjects, template=template, parameters=plain["parameters"],
        reminders=plain.get("reminders") or {}, explanation=plain["explanation"],
        choices=tuple(plain.get("choices") or ()), path=file, raw=plain)


@dataclass
class Catalogue:
    versions: list[RuleVersion]

    @classmethod
    def bundled(cls) -> "Catalogue":
        root = resources.files("rules").joinpath("files")
        versions = []
        for path in sorted(Path(str(root)).rglob("*.yaml")):
            versions.append(parse_rule(path.read_text(encoding="utf-8"), str(path.relative_to(Path(str(root)).parent.parent))))
        return cls(versions).checked()

    def checked(self) -> "Catalogue":
        seen: dict[tuple[str, str, int], str] = {}
        for v in self.versions:
            key = (v.id, v.jurisdiction, v.version)
            if key in seen:
                raise RuleFileError(v.path, [(None, f"{v.id} v{v.version} ({v.jurisdiction}) is also in {seen[key]}")])
            seen[key] = v.path
        by_rule: dict[tuple[str, str], list[RuleVersion]] = {}
        for v in self.versions:
            by_rule.setdefault((v.id, v.jurisdiction), []).append(v)
        for (rid, jur), vs in by_rule.items():
            vs.sort(key=lambda v: v.effective_from)
            for a, b in zip(vs, vs[1:]):
                if a.effective_to is None or a.effective_to >= b.effective_from:
                    raise RuleFileError(b.path, [(None, f"{rid} ({jur}) v{a.version} and v{b.version} overlap: "
                                                        "give the older version an effective.to")])
        return self

    def in_force(self, day: dt.date, rule_ids: set[str] | None = None) -> list[RuleVersion]:
        return [v for v in self.versions if v.in_force(day) and (rule_ids is None or v.id in rule_ids)]

    def get(self, rule_id: str) -> list[RuleVersion]:
        return [v for v in self.versions if v.id == rule_id]
