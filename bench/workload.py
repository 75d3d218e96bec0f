"""The reference national workload, generated deterministically (seeded random).

Reference (scale `full`): 3,000 units of which 2,000 lead laboratories, 100,000 statutory
technicians, 1,000,000 training records over the years, 500 industrial metrology test centers with
full lifecycles (approval, annual reports, exchange activities, major events and their notices,
rectification orders, failed reviews and completions, acceptance, revocation) and 20,000 work-plan
tasks with milestones and progress reports. `medium` is 10 %, `small` 1 %; any factor can be given.

Everything is produced as plain dicts in the contract's facts-file vocabulary (shared/CONTRACT.md,
`metrolex load`): `units`, `people`, `centers`, `events`. Work plans are plan-file documents
(format of adapters/bundled/plans/shanghai-2023.yaml), one per plan year, imported through
adapters.plans; their milestones and progress are `task-*` events naming the plan key
`{jurisdiction}-{year}`.

Every section draws from its own `random.Random(f"{seed}:{section}")`, so the same seed gives the
same facts in the same order, whatever is generated before it.
"""
from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Iterator

REFERENCE = {"units": 3_000, "lead_labs": 2_000, "people": 100_000, "training": 1_000_000,
             "centers": 500, "tasks": 20_000}
SCALES = {"small": 0.01, "medium": 0.10, "full": 1.0}
DEFAULT_SEED = 20250101
DEFAULT_AS_OF = dt.date(2025, 10, 15)
PLAN_YEARS = (2023, 2024, 2025)
HISTORY_START = dt.date(2019, 1, 1)

# A training year's share of the records: the rule binds from 2023, most records are recent.
_TRAINING_YEARS = (2019, 2020, 2021, 2022, 2023, 2024, 2025)
_TRAINING_WEIGHTS = (6, 7, 8, 9, 22, 25, 23)
_HOURS = (4, 8, 8, 8, 12, 16)
_COURSES = ("强制检定规程宣贯", "计量法律法规培训", "型式评价大纲培训", "测量不确定度评定", "计量基础知识",
            "数据安全与电子证书", "岗位带教")
_INSTRUMENTS = ("压力表", "加油机", "出租汽车计价器", "电子计价秤", "血压计", "电能表", "水表", "燃气表",
                "噪声计", "温度计")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍建国红文辉力鹏宇晨浩然欣怡佳琪子涵"
_DISTRICTS = ("浦东新区", "黄浦区", "徐汇区", "长宁区", "静安区", "普陀区", "虹口区", "杨浦区", "闵行区",
              "宝山区", "嘉定区", "金山区", "松江区", "青浦区", "奉贤区", "崇明区")
_INDUSTRIES = ("智能网联汽车", "集成电路", "生物医药", "人工智能", "商用飞机", "新材料", "新能源", "碳计量",
               "高端装备", "时间频率", "海洋装备", "氢能")
_GROUPS = (("一", "坚持计量引领,主动服务国家战略"), ("二", "推进计量改革,加大监管力度"),
           ("三", "提升技术能力,完善量传溯源体系"), ("四", "强化计量支撑,提高核心竞争能力"),
           ("五", "优化计量服务,践行人民城市理念"))
_STATUTORY_DUTIES = (["mandatory-verification"],) * 6 + (["type-evaluation"],) * 2 + \
    (["mandatory-verification", "type-evaluation"],) * 2
DIVISION_ID = "sh-jlc"


def scale_factor(scale: str | float) -> float:
    """`small` | `medium` | `full`, a factor (`0.0001`) or a percentage (`0.01%`)."""
    if isinstance(scale, (int, float)):
        factor = float(scale)
    elif scale in SCALES:
        factor = SCALES[scale]
    elif isinstance(scale, str) and scale.endswith("%"):
        factor = float(scale[:-1]) / 100
    else:
        try:
            factor = float(scale)
        except ValueError:
            raise ValueError(f"unknown scale {scale!r} (small, medium, full, a factor or a percentage)") from None
    if not 0 < factor <= 10:
        raise ValueError(f"scale factor must be in (0, 10], got {factor}")
    return factor


@dataclass(frozen=True)
class Counts:
    """The advertised size of a workload: the reference counts times the factor (at least one of
    each, and at least a regulator and one other unit)."""

    units: int
    lead_labs: int
    people: int
    training: int
    centers: int
    tasks: int

    @classmethod
    def at(cls, factor: float) -> "Counts":
        def n(key: str, minimum: int = 1) -> int:
            return max(minimum, round(REFERENCE[key] * factor))

        units = n("units", 2)
        return cls(units=units, lead_labs=min(units - 1, n("lead_labs")), people=n("people"),
                   training=n("training"), centers=n("centers"), tasks=n("tasks"))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _day(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    """A uniformly random day in [start, end] (start when the range is empty)."""
    span = (end - start).days
    return start if span <= 0 else start + dt.timedelta(days=rng.randint(0, span))


def _anniversary_eve(start: dt.date, years: int) -> dt.date:
    """The day before the `years`-th anniversary (29 Feb → 28 Feb), as the construction rule counts."""
    try:
        anniversary = start.replace(year=start.year + years)
    except ValueError:
        anniversary = dt.date(start.year + years, 3, 1)
    return anniversary - dt.timedelta(days=1)


def _iso(day: dt.date) -> str:
    return day.isoformat()


@dataclass(frozen=True)
class _PersonStub:
    id: str
    since: dt.date


class Workload:
    """The reference workload at a scale. Iterate `fact_records()` (registrations and events),
    `plans()` (plan-file documents) and `task_records()` (task events, after the plans)."""

    def __init__(self, scale: str | float = "small", seed: int = DEFAULT_SEED, as_of: dt.date = DEFAULT_AS_OF,
                 jurisdiction: str = "shanghai") -> None:
        self.scale = scale
        self.factor = scale_factor(scale)
        self.counts = Counts.at(self.factor)
        self.seed = seed
        self.as_of = as_of
        self.jurisdiction = jurisdiction

    def rng(self, section: str) -> random.Random:
        return random.Random(f"{self.seed}:{section}")

    # -- registrations ---------------------------------------------------------------------------
    @cached_property
    def _units(self) -> list[dict]:
        rng = self.rng("units")
        c = self.counts
        units = [{"id": DIVISION_ID, "name": "市局计量处", "kind": "regulator", "email": "jlc@bench.example"}]
        for i in range(1, c.units):
            district = _DISTRICTS[i % len(_DISTRICTS)]
            lead = i <= c.lead_labs
            if lead:
                kind = "institute" if i % 10 == 0 else "district-institute"
                name = f"{district}计量所{i:05d}"
            else:
                kind = rng.choice(("district-bureau", "center-host", "association", "other"))
                name = f"{district}计量单位{i:05d}"
            unit = {"id": f"u-{i:05d}", "name": name, "kind": kind, "email": f"u{i:05d}@bench.example"}
            if lead:
                unit["lead_lab_since"] = _iso(_day(rng, dt.date(2015, 1, 1), dt.date(2024, 12, 31)))
            if rng.random() < 0.3:
                unit["supervisor"] = DIVISION_ID
            units.append(unit)
        return units

    def units(self) -> list[dict]:
        return [dict(u) for u in self._units]

    @cached_property
    def _member_units(self) -> list[str]:
        return [u["id"] for u in self._units[1:]]

    @cached_property
    def _people(self) -> list[_PersonStub]:
        rng = self.rng("people")
        return [_PersonStub(f"p-{i:06d}", _day(rng, dt.date(2005, 1, 1), dt.date(2025, 6, 30)))
                for i in range(self.counts.people)]

    def people(self) -> Iterator[dict]:
        rng = self.rng("people-detail")
        units = self._member_units
        for p in self._people:
            name = rng.choice(_SURNAMES) + rng.choice(_GIVEN) + (rng.choice(_GIVEN) if rng.random() < 0.6 else "")
            yield {"id": p.id, "name": name, "unit": rng.choice(units),
                   "duties": list(rng.choice(_STATUTORY_DUTIES)), "since": _iso(p.since)}

    @cached_property
    def _center_hosts(self) -> list[str]:
        rng = self.rng("center-hosts")
        units = self._member_units
        return [rng.choice(units) for _ in range(self.counts.centers)]

    def centers(self) -> list[dict]:
        out = []
        for i, host in enumerate(self._center_hosts):
            industry = _INDUSTRIES[i % len(_INDUSTRIES)]
            out.append({"id": f"c-{i:04d}", "name": f"上海市{industry}产业计量测试中心{i:04d}", "host": host,
                        "email": f"c{i:04d}@bench.example"})
        return out

    # -- events ----------------------------------------------------------------------------------
    def _upto_as_of(self, events: Iterable[dict]) -> list[dict]:
        """Nothing dated after the as-of day has happened yet; stable by date (answers follow what
        they answer: they are generated after it and dated on or after it)."""
        keep = [e for e in events if e["date"] <= _iso(self.as_of)]
        keep.sort(key=lambda e: e["date"])
        return keep

    def unit_events(self) -> Iterator[dict]:
        """Lead laboratories: a city-wide comparison every 1.5–3.5 years; 2 % stop being lead labs."""
        rng = self.rng("unit-events")
        for unit in self._units:
            since = unit.get("lead_lab_since")
            if not since:
                continue
            uid = unit["id"]
            start = dt.date.fromisoformat(since)
            ended = None
            if rng.random() < 0.02:
                ended = _day(rng, start + dt.timedelta(days=365), self.as_of)
            events = []
            day, n = start, 0
            while True:
                day += dt.timedelta(days=rng.randint(540, 1280))
                if day > self.as_of or (ended and day > ended):
                    break
                n += 1
                events.append({"id": f"cmp-{uid}-{n}", "type": "comparison-organized", "date": _iso(day),
                               "unit": uid, "subject": rng.choice(_INSTRUMENTS)})
            if ended and ended <= self.as_of:
                events.append({"id": f"lle-{uid}", "type": "lead-lab-ended", "date": _iso(ended), "unit": uid})
            yield from self._upto_as_of(events)

    def person_events(self) -> Iterator[dict]:
        """3 % of technicians change duties (to other or to type evaluation), 1 % end them. The first
        technician (`probe_person`) never changes: the incremental measurement uses them."""
        rng = self.rng("person-events")
        for p in self._people[1:]:
            r = rng.random()
            if r >= 0.04:
                continue
            day = _day(rng, max(p.since, HISTORY_START) + dt.timedelta(days=30), self.as_of)
            if day > self.as_of:
                continue
            if r < 0.03:
                duties = rng.choice((["other"], ["type-evaluation"], ["other"]))
                yield {"id": f"pdc-{p.id}", "type": "person-duties-changed", "date": _iso(day), "person": p.id,
                       "duties": duties}
            else:
                yield {"id": f"pde-{p.id}", "type": "person-duties-ended", "date": _iso(day), "person": p.id}

    @property
    def probe_person(self) -> str:
        return self._people[0].id

    def training_events(self) -> Iterator[dict]:
        """Exactly `counts.training` training records (random technician, a recent year more
        likely); 0.2 % of them are a duplicate entry that an `event-retracted` corrects."""
        rng = self.rng("training")
        people = self._people
        years = [y for y in _TRAINING_YEARS if y <= self.as_of.year] or [self.as_of.year]
        weights = [w for y, w in zip(_TRAINING_YEARS, _TRAINING_WEIGHTS) if y <= self.as_of.year] or [1]
        cum = []
        total = 0
        for w in weights:
            total += w
            cum.append(total)
        emitted, n_retract = 0, 0
        as_of = self.as_of
        while emitted < self.counts.training:
            p = people[rng.randrange(len(people))]
            year = years[rng.choices(range(len(years)), cum_weights=cum)[0]]
            day = _day(rng, dt.date(year, 1, 1), min(dt.date(year, 12, 31), as_of))
            record = {"id": f"tr-{emitted:07d}", "type": "training-recorded", "date": _iso(day), "person": p.id,
                      "hours": rng.choice(_HOURS), "off_job": rng.random() < 0.9, "course": rng.choice(_COURSES)}
            yield record
            emitted += 1
            if emitted < self.counts.training and rng.random() < 0.002:
                duplicate = dict(record, id=f"tr-{emitted:07d}")
                yield duplicate
                emitted += 1
                fix = min(day + dt.timedelta(days=rng.randint(1, 20)), as_of)
                yield {"id": f"rtr-{n_retract:06d}", "type": "event-retracted", "date": _iso(fix),
                       "retracts": duplicate["id"], "reason": "重复录入"}
                n_retract += 1

    def center_events(self) -> Iterator[dict]:
        """Each center's whole life: approval (2 or 3 construction years, or none named), yearly
        exchange activities, annual reports while under construction (some late, some missing),
        major events and their notices (some late, some never; with or without refers_to),
        rectification orders (completed, failed then completed, completed late, or open),
        application and acceptance (on time, late or not yet), and 5 % revoked."""
        rng = self.rng("center-events")
        as_of = self.as_of
        for i, center in enumerate(self.centers()):
            cid = center["id"]
            approved = _day(rng, HISTORY_START, dt.date(2025, 6, 30))
            years = rng.choice((2, 3, 3, None))
            end = _anniversary_eve(approved, years or 3)
            outcome = rng.random()
            accepted = revoked = None
            if outcome < 0.55:
                accepted = max(approved + dt.timedelta(days=300), end - dt.timedelta(days=rng.randint(0, 200)))
            elif outcome < 0.70:
                accepted = end + dt.timedelta(days=rng.randint(10, 300))
            elif outcome >= 0.95:
                revoked = _day(rng, approved + dt.timedelta(days=365), max(as_of, approved + dt.timedelta(days=365)))
            last = min(as_of, revoked) if revoked else as_of
            events: list[dict] = []
            n = 0

            def ev(kind: str, day: dt.date, **fields) -> dict:
                nonlocal n
                n += 1
                e = {"id": f"{cid}-{n:03d}", "type": kind, "date": _iso(day), "center": cid, **fields}
                events.append(e)
                return e

            approval = {"construction_years": years} if years else {}
            ev("center-approved", approved, **approval)
            for year in range(approved.year, last.year + 1):
                y0 = max(approved, dt.date(year, 1, 1))
                y1 = min(last, dt.date(year, 12, 31))
                if y0 > y1:
                    continue
                for _ in range(rng.choice((0, 1, 2, 2, 3))):
                    ev("exchange-activity-held", _day(rng, y0, y1), title=f"{year}年{rng.choice(_INDUSTRIES)}技术交流会")
                nov30 = dt.date(year, 11, 30)
                under_construction = approved <= nov30 and not (accepted and accepted <= nov30) and \
                    not (revoked and revoked < nov30)
                if under_construction:
                    r = rng.random()
                    if r < 0.85:
                        ev("center-annual-report-filed", _day(rng, dt.date(year, 11, 1), nov30), year=year)
                    elif r < 0.92:
                        ev("center-annual-report-filed", _day(rng, dt.date(year, 12, 1), dt.date(year, 12, 20)),
                           year=year)
                for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
                    day = _day(rng, y0, y1)
                    major = ev("center-major-event", day, summary=rng.choice(("主任变更", "场地搬迁", "依托单位更名",
                                                                              "主要设备变更")))
                    r = rng.random()
                    if r < 0.85:
                        notice_day = day + dt.timedelta(days=rng.randint(1, 6) if r < 0.75 else rng.randint(8, 20))
                        refs = {"refers_to": major["id"]} if rng.random() < 0.7 else {}
                        ev("center-major-event-notified", notice_day, **refs)
                if rng.random() < 0.25:
                    day = _day(rng, y0, y1)
                    deadline = day + dt.timedelta(days=rng.randint(30, 120))
                    order = ev("rectification-ordered", day, deadline=_iso(deadline), reason="筹建进度滞后")
                    refs = {"refers_to": order["id"]}
                    r = rng.random()
                    if r < 0.60:
                        ev("rectification-completed", _day(rng, day + dt.timedelta(days=7), deadline), **refs)
                    elif r < 0.75:
                        done = _day(rng, day + dt.timedelta(days=7), deadline)
                        ev("rectification-completed", done, **refs)
                        ev("rectification-failed", done + dt.timedelta(days=rng.randint(3, 20)), **refs)
                        ev("rectification-completed", deadline + dt.timedelta(days=rng.randint(10, 60)), **refs)
                    elif r < 0.85:
                        ev("rectification-completed", deadline + dt.timedelta(days=rng.randint(1, 90)), **refs)
            if accepted:
                ev("center-acceptance-applied", accepted - dt.timedelta(days=rng.randint(30, 90)))
                ev("center-accepted", accepted)
            if revoked:
                ev("center-revoked", revoked)
            yield from self._upto_as_of(events)

    def events(self) -> Iterator[dict]:
        yield from self.unit_events()
        yield from self.person_events()
        yield from self.center_events()
        yield from self.training_events()

    def fact_records(self) -> Iterator[tuple[str, dict]]:
        """(section, record) in load order: units, people, centers, then events."""
        for u in self.units():
            yield "units", u
        for p in self.people():
            yield "people", p
        for c in self.centers():
            yield "centers", c
        for e in self.events():
            yield "events", e

    # -- work plans ------------------------------------------------------------------------------
    def _tasks_per_year(self) -> dict[int, int]:
        k, n = self.counts.tasks, len(PLAN_YEARS)
        return {y: k // n + (1 if i < k % n else 0) for i, y in enumerate(PLAN_YEARS)}

    def plan_key(self, year: int) -> str:
        return f"{self.jurisdiction}-{year}"

    def plans(self) -> list[dict]:
        """One plan document a year (the 20,000 tasks are split over PLAN_YEARS); leads and
        supporting units are named as a document names them (unit names)."""
        rng = self.rng("plans")
        names = [u["name"] for u in self._units[1:]]
        out = []
        for year, count in self._tasks_per_year().items():
            if count == 0:
                continue
            tasks = []
            for number in range(1, count + 1):
                group, _ = _GROUPS[(number - 1) * len(_GROUPS) // count]
                topic = rng.choice(_INDUSTRIES)
                leads = ["市局计量处"] if rng.random() < 0.2 else rng.sample(names, min(len(names), rng.randint(1, 2)))
                tasks.append({
                    "number": number, "group": group, "title": f"{topic}计量能力提升{number}",
                    "text": f"围绕{topic}领域开展计量测试能力建设,完成年度目标任务第{number}项。",
                    "leads": leads,
                    "supporting": [u for u in rng.sample(names, min(len(names), rng.randint(0, 3))) if u not in leads],
                    "milestones": [],
                })
            out.append({"jurisdiction": self.jurisdiction, "year": year,
                        "document": {"title": f"{year}年上海市计量工作要点(基准负载)", "issuer": "上海市市场监督管理局",
                                     "date": f"{year}-02-21"},
                        "groups": [{"number": g, "title": t} for g, t in _GROUPS],
                        "tasks": tasks})
        return out

    def task_events(self) -> Iterator[dict]:
        """1–3 milestones per task, set by the division; 75 % answered by a progress report naming
        the milestone (some late), 35 % of tasks completed."""
        rng = self.rng("task-events")
        as_of = self.as_of
        for year, count in self._tasks_per_year().items():
            key = self.plan_key(year)
            events: list[dict] = []
            for number in range(1, count + 1):
                last_due = None
                for m in range(1, rng.randint(1, 3) + 1):
                    set_on = _day(rng, dt.date(year, 3, 1), dt.date(year, 4, 30))
                    due = min(dt.date(year, 12, 31), set_on + dt.timedelta(days=rng.randint(30, 250)))
                    last_due = max(last_due or due, due)
                    name = f"节点{m}"
                    events.append({"id": f"tms-{year}-{number}-{m}", "type": "task-milestone-set", "date": _iso(set_on),
                                   "plan": key, "task": number, "name": name, "due": _iso(due)})
                    if rng.random() < 0.75:
                        report = max(set_on, due + dt.timedelta(days=rng.randint(-40, 25)))
                        events.append({"id": f"tpr-{year}-{number}-{m}", "type": "task-progress-reported",
                                       "date": _iso(report), "plan": key, "task": number, "unit": "牵头单位",
                                       "text": f"{name}已完成", "milestone": name})
                if rng.random() < 0.35:
                    events.append({"id": f"tco-{year}-{number}", "type": "task-completed",
                                   "date": _iso(min(dt.date(year, 12, 31), last_due + dt.timedelta(days=rng.randint(0, 30)))),
                                   "plan": key, "task": number})
            for e in events:
                if e["date"] <= _iso(as_of):
                    yield e

    def task_records(self) -> Iterator[tuple[str, dict]]:
        for e in self.task_events():
            yield "events", e

    # -- counting --------------------------------------------------------------------------------
    def census(self) -> dict:
        """What the workload holds, by section and event type (one full generation pass)."""
        sections: dict[str, int] = {}
        types: dict[str, int] = {}
        for section, record in list(self.fact_records()) + list(self.task_records()):
            sections[section] = sections.get(section, 0) + 1
            if section == "events":
                types[record["type"]] = types.get(record["type"], 0) + 1
        plans = self.plans()
        return {"sections": sections, "event_types": dict(sorted(types.items())), "plans": len(plans),
                "tasks": sum(len(p["tasks"]) for p in plans),
                "lead_labs": sum(1 for u in self._units if u.get("lead_lab_since"))}


def chunked(records: Iterable[tuple[str, dict]], size: int) -> Iterator[list[tuple[str, dict]]]:
    chunk: list[tuple[str, dict]] = []
    for item in records:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def facts_document(chunk: list[tuple[str, dict]], name: str, jurisdiction: str = "shanghai"):
    """A chunk of records → an in-memory facts document (adapters.facts_file.FactsDocument)."""
    from adapters.facts_file import FactsDocument, RawRecord
    index: dict[str, int] = {}
    records = []
    for section, data in chunk:
        i = index.get(section, 0)
        index[section] = i + 1
        records.append(RawRecord(section, i, None, data))
    return FactsDocument(name, jurisdiction, records)


def _yaml_scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def _yaml_list(values: list) -> str:
    return "[" + ", ".join(_yaml_scalar(v) for v in values) + "]"


def plan_yaml(plan: dict) -> str:
    """A plan document as a plan file (the format of adapters/bundled/plans/shanghai-2023.yaml)."""
    doc = plan["document"]
    lines = [f"jurisdiction: {plan['jurisdiction']}", f"year: {plan['year']}", "document:",
             f"  title: {_yaml_scalar(doc['title'])}", f"  issuer: {_yaml_scalar(doc['issuer'])}",
             f"  date: {doc['date']}", "groups:"]
    lines += [f"  - {{number: {_yaml_scalar(g['number'])}, title: {_yaml_scalar(g['title'])}}}" for g in plan["groups"]]
    lines.append("tasks:")
    for t in plan["tasks"]:
        lines += [f"  - number: {t['number']}", f"    group: {_yaml_scalar(t['group'])}",
                  f"    title: {_yaml_scalar(t['title'])}", f"    text: {_yaml_scalar(t['text'])}",
                  f"    leads: {_yaml_list(t['leads'])}", f"    supporting: {_yaml_list(t['supporting'])}",
                  f"    milestones: {_yaml_list(t['milestones'])}"]
    return "\n".join(lines) + "\n"


def write_plan_files(workload: Workload, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for plan in workload.plans():
        path = directory / f"{plan['jurisdiction']}-{plan['year']}.yaml"
        path.write_text(plan_yaml(plan), encoding="utf-8")
        paths.append(path)
    return paths
