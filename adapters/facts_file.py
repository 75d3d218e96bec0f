"""Reading facts files: YAML 1.2 (booleans are true/false only), JSON, and CSV/XLSX training
registers (columns person, date, hours, off-job, course; optional id). Every record keeps the
line (or row) it came from, so a refusal can name it.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError

from rules.yamltext import fast_yaml  # noqa: F401  (plans read with it too)

TOP_LEVEL = ("jurisdiction", "units", "people", "centers", "events")


class FileError(Exception):
    """A file (or one record of it) cannot be loaded. Nothing of the file is stored."""

    def __init__(self, file: str, message: str, line: int | None = None, field_name: str | None = None,
                 record: str | None = None) -> None:
        self.file, self.line, self.field, self.record, self.message = file, line, field_name, record, message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        rec = f" ({self.record})" if self.record else ""
        fld = f" field '{self.field}':" if self.field else ""
        return f"{where}{rec}:{fld} {self.message}"

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "record": self.record, "field": self.field,
                "message": self.message}


@dataclass
class RawRecord:
    section: str  # units | people | centers | events
    index: int
    line: int | None
    data: dict[str, Any]
    field_lines: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.section}[{self.index}]"


@dataclass
class FactsDocument:
    file: str
    jurisdiction: str
    records: list[RawRecord]


def _plain(value: Any) -> Any:
    """ruamel's round-trip types → plain Python (bool before int: bool is an int)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


# JSON writes a character beyond U+FFFF as two escapes, a high and a low surrogate ("\ud842\udfb7"
# for 𠮷, as json.dumps and most clients do by default), but YAML reads each escape as a character
# of its own, which is not text: it cannot be hashed, stored or sent back as UTF-8.
_SURROGATE_PAIR = re.compile(r"(?<!\\)((?:\\\\)*)\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})")
_LONE_SURROGATE = re.compile(r"(?<!\\)(?:\\\\)*\\(?:u|U0000)[dD][89a-fA-F][0-9a-fA-F]{2}")


def yaml_text(name: str, text: str) -> str:
    """The text with each escaped surrogate pair written as the character it stands for; an
    escape of half a pair is refused (it is not a character)."""
    if "\\u" not in text and "\\U" not in text:  # (no \u or \U escape at all: the usual text)
        return text

    def join(m: re.Match) -> str:
        high, low = int(m.group(2), 16), int(m.group(3), 16)
        return m.group(1) + chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    text = _SURROGATE_PAIR.sub(join, text)
    lone = _LONE_SURROGATE.search(text)
    if lone:
        raise FileError(name, "an escape of half a surrogate pair (\\uD800-\\uDFFF alone) is not a character",
                        line=text.count("\n", 0, lone.start()) + 1)
    return text


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.version = (1, 2)
    y.allow_duplicate_keys = False
    # Dates stay text so that an impossible date is refused with its line, not by the parser.
    y.constructor.add_constructor("tag:yaml.org,2002:timestamp", lambda c, n: str(c.construct_scalar(n)))
    return y


def read_facts_file(path: str | Path, text: str | None = None) -> FactsDocument:
    path = Path(path)
    name = str(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".xlsx"):
        return _read_register(path, suffix)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise FileError(name, "no such file") from None
        except UnicodeDecodeError as exc:
            raise FileError(name, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if suffix == ".json":
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise FileError(name, f"broken JSON: {exc.msg} (column {exc.colno})", line=exc.lineno) from None
    text = yaml_text(name, text)
    try:
        doc = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise FileError(name, f"broken YAML: {exc.problem or exc.context}", line=line) from None
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. duplicate keys)
        raise FileError(name, f"broken YAML: {exc}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise FileError(name, f"expected a mapping with keys {', '.join(TOP_LEVEL)}, got {type(doc).__name__}", line=1)
    for key in doc:
        if key not in TOP_LEVEL:
            line = doc.lc.key(key)[0] + 1 if hasattr(doc, "lc") else None
            raise FileError(name, f"unknown top-level key {key!r} (allowed: {', '.join(TOP_LEVEL)})",
                            line=line, field_name=str(key))
    jurisdiction = doc.get("jurisdiction", "shanghai")
    if jurisdiction not in ("shanghai", "jiangsu"):
        line = doc.lc.key("jurisdiction")[0] + 1 if hasattr(doc, "lc") else None
        raise FileError(name, f"unknown jurisdiction {jurisdiction!r} (known: shanghai, jiangsu)",
                        line=line, field_name="jurisdiction")
    records: list[RawRecord] = []
    for section in ("units", "people", "centers", "events"):
        items = doc.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            line = doc.lc.key(section)[0] + 1 if hasattr(doc, "lc") else None
            raise FileError(name, f"'{section}' must be a list", line=line, field_name=section)
        for i, item in enumerate(items):
            line = None
            field_lines: dict[str, int] = {}
            if hasattr(items, "lc"):
                try:
                    line = items.lc.item(i)[0] + 1
                except Exception:  # pragma: no cover - flow sequences without marks
                    line = None
            if hasattr(item, "lc"):
                line = item.lc.line + 1
                for k in item:
                    try:
                        field_lines[str(k)] = item.lc.key(k)[0] + 1
                    except Exception:  # pragma: no cover
                        pass
            records.append(RawRecord(section, i, line, _plain(item), field_lines))
    return FactsDocument(name, jurisdiction, records)


_TRUE = {"true", "1", "是", "y", "yes", "脱产"}
_FALSE = {"false", "0", "否", "n", "no", "在职", ""}
_COLUMNS = {"person": "person", "人员": "person", "date": "date", "日期": "date", "hours": "hours",
            "学时": "hours", "off-job": "off_job", "off_job": "off_job", "脱产": "off_job",
            "course": "course", "课程": "course", "id": "id"}


def _register_row(name: str, rownum: int, row: dict[str, Any]) -> RawRecord:
    data: dict[str, Any] = {"type": "training-recorded"}
    for key, value in row.items():
        if key is None or str(key).strip() == "":
            if value not in (None, "", []):
                raise FileError(name, "a value stands in a column without a heading", line=rownum,
                                record=f"row {rownum}")
            continue
        col = _COLUMNS.get(str(key).strip().lower(), _COLUMNS.get(str(key).strip()))
        if col is None:
            raise FileError(name, f"unknown column {key!r} (expected person, date, hours, off-job, course, id)",
                            line=1, field_name=str(key))
        if value is None or (isinstance(value, str) and value.strip() == "" and col != "off_job"):
            continue
        if col == "hours" and isinstance(value, str):
            try:
                value = float(value) if "." in value else int(value)
            except ValueError:
                raise FileError(name, f"expected a number of class hours, got {value!r}", line=rownum,
                                field_name="hours", record=f"row {rownum}") from None
        elif col == "off_job" and not isinstance(value, bool):
            text = str(value).strip().lower()
            if text in _TRUE:
                value = True
            elif text in _FALSE and text != "":
                value = False
            else:
                raise FileError(name, f"expected true or false, got {value!r}", line=rownum,
                                field_name="off-job", record=f"row {rownum}")
        elif col == "date" and hasattr(value, "isoformat"):
            value = value.date().isoformat() if hasattr(value, "date") else value.isoformat()
        elif col in ("person", "course", "id", "date"):
            value = str(value).strip()
        data[col] = value
    return RawRecord("events", rownum - 2, rownum, data)


def _read_register(path: Path, suffix: str) -> FactsDocument:
    name = str(path)
    records: list[RawRecord] = []
    if not path.exists():
        raise FileError(name, "no such file")
    if suffix == ".csv":
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise FileError(name, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise FileError(name, "empty register: expected a heading row person,date,hours,off-job,course")
        for i, row in enumerate(reader, start=2):
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            if None in row:
                raise FileError(name, "more values than headings", line=i, record=f"row {i}")
            records.append(_register_row(name, i, row))
    else:
        from openpyxl import load_workbook
        try:
            wb = load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:
            raise FileError(name, f"not a readable XLSX workbook: {exc}") from None
        ws = wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header = next(rows, None)
        if not header:
            raise FileError(name, "empty register: expected a heading row person,date,hours,off-job,course")
        for i, values in enumerate(rows, start=2):
            if all(v is None or str(v).strip() == "" for v in values):
                continue
            records.append(_register_row(name, i, dict(zip(header, values))))
        wb.close()
    return FactsDocument(name, "shanghai", records)
