"""Aggregates: commands record past-tense events; guards refuse what the record cannot say."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.center import Center
from domain.errors import AlreadyRetractedError, FactConflictError, ReferenceMismatchError
from domain.notice import Notice, NoticeError
from domain.person import Person
from domain.plan import TaskError, WorkPlan
from domain.training import TrainingRecord, TrainingRegister
from domain.unit import Unit


def _events(agg):
    return [type(e).__name__ for e in agg.collect_events()]


def test_a_unit_becomes_and_stops_being_a_lead_lab():
    u = Unit("sh-zjy", "unit:sh-zjy", "h0", "质检院", "institute", "shanghai", "2023-01-01")
    u.organize_comparison("c1", "h1", "2023-06-10", "压力表")
    u.end_lead_lab("e1", "h2", "2025-12-31")
    assert u.comparisons == ["c1"] and u.lead_lab_ended == "2025-12-31"
    assert _events(u) == ["Registered", "ComparisonOrganized", "LeadLabEnded"]
    assert Unit.create_id("sh-zjy") == u.id


def test_a_repeat_is_a_no_op_and_a_conflict_is_refused():
    u = Unit("u1", "unit:u1", "h0", "单位", "institute", "shanghai")
    assert u.check_fact_is_new("unit:u1", "h0") is False
    assert u.check_fact_is_new("other", "hx") is True
    with pytest.raises(FactConflictError):
        u.check_fact_is_new("unit:u1", "different")


def test_a_person_changes_duties_and_leaves():
    p = Person("p1", "person:p1", "h", "王芳", "u1", ["mandatory-verification"], "2022-05-01")
    assert p.is_statutory
    p.change_duties("d1", "h1", "2024-03-01", ["other"])
    assert not p.is_statutory
    p.end_duties("d2", "h2", "2024-12-31")
    assert p.duties == [] and _events(p) == ["Registered", "DutiesChanged", "DutiesEnded"]


def test_a_center_lives_from_approval_to_revocation_and_answers_its_own_events():
    c = Center("c1", "center:c1", "h", "中心", "u1")
    c.approve("a", "h", "2023-06-01", 2)
    c.report_major_event("me1", "h", "2023-09-28", "主任变更")
    c.order_rectification("ro1", "h", "2024-03-01", "2024-06-30")
    c.check_answers("me1", "center-major-event")
    c.check_answers(None, "center-major-event")
    with pytest.raises(ReferenceMismatchError):
        c.check_answers("ro1", "center-major-event")
    with pytest.raises(ReferenceMismatchError):
        c.check_answers("me1", "rectification-ordered")
    c.fail_rectification("rf", "h", "2024-06-10", "ro1")
    c.complete_rectification("rc", "h", "2024-06-20", "ro1")
    c.accept("acc", "h", "2025-05-20")
    c.revoke("rev", "h", "2026-09-01")
    assert (c.approved_on, c.accepted_on, c.revoked_on) == ("2023-06-01", "2025-05-20", "2026-09-01")
    assert "RectificationFailed" in _events(c)


def test_a_retraction_is_a_new_event_and_cannot_be_repeated_by_another():
    t = TrainingRecord("t1", "t1", "h", "p1", "2023-03-02", 8, True)
    t.check_can_retract("t1", "r1")
    t.retract("t1", "r1", "hr", "2023-04-01", "重复录入")
    assert t.retracted == {"t1": "r1"}
    t.check_can_retract("t1", "r1")  # the same retraction again is a repeat, not a conflict
    with pytest.raises(AlreadyRetractedError):
        t.check_can_retract("t1", "r2")
    with pytest.raises(ReferenceMismatchError):
        t.check_can_retract("r1", "r3")  # a retraction is not itself retracted
    with pytest.raises(ReferenceMismatchError):
        t.check_can_retract("unknown", "r3")
    assert _events(t) == ["Recorded", "FactRetracted"]


def test_a_register_files_many_records_each_retractable_on_its_own():
    records = [{"fact_id": f"t{i}", "content_hash": f"h{i}", "person": "p1", "date": "2023-03-02", "hours": 8,
                "off_job": True} for i in range(3)]
    reg = TrainingRegister("2024-01-05T02:00:00.000000+00:00|t0", records)
    assert reg.size == 3 and reg.facts == {"t0": "h0", "t1": "h1", "t2": "h2"}
    assert reg.check_fact_is_new("t1", "h1") is False
    with pytest.raises(FactConflictError):
        reg.check_fact_is_new("t1", "other")
    reg.check_can_retract("t1", "r1")
    reg.retract("t1", "r1", "hr", "2023-04-01", "重复录入")
    with pytest.raises(AlreadyRetractedError):
        reg.check_can_retract("t1", "r2")
    reg.check_can_retract("t2", "r2")  # the others are untouched
    events = reg.collect_events()
    assert [type(e).__name__ for e in events] == ["Filed", "FactRetracted"]
    copy = None
    for e in events:
        copy = e.mutate(copy)
    assert copy.retracted == {"t1": "r1"} and copy.facts["t0"] == "h0"


def test_replaying_a_training_record_rebuilds_it():
    t = TrainingRecord("t1", "t1", "h", "p1", "2023-03-02", 8, True)
    events = t.collect_events()
    copy = None
    for e in events:
        copy = e.mutate(copy)
    assert (copy.person, copy.hours, copy.off_job) == ("p1", 8, True)


def test_a_work_plan_assigns_reassigns_and_completes_tasks():
    plan = WorkPlan("shanghai-2023", "plan:shanghai-2023", "h", "shanghai", 2023, {}, [],
                    [{"number": 1, "title": "任务", "leads": ["市局计量处"], "supporting": ["各区市场监管局"]}])
    plan.reassign_task("r", "h", "2023-04-01", 1, ["市计量院"], [])
    plan.set_milestone("m", "h", "2023-04-02", 1, "中期", "2023-06-30")
    plan.report_progress("p", "h", "2023-06-01", 1, "市计量院", "已完成一半", "中期")
    plan.complete_task("c", "h", "2023-12-01", 1, "市计量院")
    assert plan.tasks[1]["leads"] == ["市计量院"] and plan.tasks[1]["status"] == "completed"
    with pytest.raises(TaskError):
        plan.check_can_complete(1)
    with pytest.raises(Exception):
        plan.check_task(99)


_TASKS = [{"number": n, "title": f"任务{n}", "leads": ["市局计量处"], "supporting": []} for n in (1, 2, 3)]
_task_fact = st.one_of(
    st.tuples(st.just("task-reassigned"), st.sampled_from([1, 2, 3]),
              st.fixed_dictionaries({"leads": st.lists(st.sampled_from(["市计量院", "区局"]), min_size=1, max_size=2)},
                                    optional={"supporting": st.lists(st.sampled_from(["区局", "所"]), max_size=2)})),
    st.tuples(st.just("task-milestone-set"), st.sampled_from([1, 2, 3]),
              st.fixed_dictionaries({"name": st.sampled_from(["中期", "年底"]), "due": st.just("2023-06-30")})),
    st.tuples(st.just("task-progress-reported"), st.sampled_from([1, 2, 3]),
              st.fixed_dictionaries({"unit": st.just("市计量院"), "text": st.just("进展")},
                                    optional={"milestone": st.just("中期")})),
    st.tuples(st.just("task-completed"), st.sampled_from([1, 2, 3]),
              st.fixed_dictionaries({}, optional={"unit": st.just("市计量院")})),
)


def _per_fact(plan, fact_type, fact_id, number, f):
    """A task fact as one event of its own: how stores written before round 10 hold it."""
    date = "2023-05-01"
    if fact_type == "task-reassigned":
        plan.reassign_task(fact_id, "h" + fact_id, date, number, f["leads"], f.get("supporting", []))
    elif fact_type == "task-milestone-set":
        plan.set_milestone(fact_id, "h" + fact_id, date, number, f["name"], f["due"])
    elif fact_type == "task-progress-reported":
        plan.report_progress(fact_id, "h" + fact_id, date, number, f["unit"], f["text"], f.get("milestone"))
    else:
        plan.complete_task(fact_id, "h" + fact_id, date, number, f.get("unit"))


def _state(plan) -> tuple:
    return plan.tasks, plan.facts, plan.fact_types, plan.retracted


@settings(max_examples=150, deadline=None)
@given(st.lists(_task_fact, min_size=1, max_size=8))
def test_a_plans_task_facts_in_one_event_do_what_one_event_each_did(facts):
    """A submission's task facts are one event of the plan; it must leave the plan as the
    per-fact events of older stores do, when applied and when replayed from stored form."""
    from adapters.store import Record
    one_each = WorkPlan("shanghai-2023", "plan:shanghai-2023", "h", "shanghai", 2023, {}, [], _TASKS)
    together = WorkPlan("shanghai-2023", "plan:shanghai-2023", "h", "shanghai", 2023, {}, [], _TASKS)
    batch = []
    for i, (fact_type, number, f) in enumerate(facts):
        _per_fact(one_each, fact_type, f"f{i}", number, f)
        batch.append({"type": fact_type, "fact_id": f"f{i}", "content_hash": f"hf{i}",
                      "fields": {"date": "2023-05-01", "plan": "shanghai-2023", "task": number, **f}})
    together.record_task_facts(batch)
    for plan in (one_each, together):
        plan.retract("f0", "r0", "hr0", "2023-07-01", "")
    assert _state(together) == _state(one_each)
    events = {"one_each": one_each.collect_events(), "together": together.collect_events()}
    assert [type(e).__name__ for e in events["together"]] == ["Published", "TaskFactsRecorded", "FactRetracted"]
    assert len(events["one_each"]) == len(facts) + 2
    mapper = Record(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper
    replayed = {}
    for name, stored in events.items():
        copy = None
        for e in stored:
            copy = mapper.to_domain_event(mapper.to_stored_event(e)).mutate(copy)
        replayed[name] = _state(copy)
    assert replayed["together"] == replayed["one_each"] == _state(one_each)


def test_a_task_fact_of_an_unknown_kind_is_refused():
    plan = WorkPlan("shanghai-2023", "plan:shanghai-2023", "h", "shanghai", 2023, {}, [], _TASKS)
    with pytest.raises(TaskError):
        plan.record_task_facts([{"type": "task-deleted", "fact_id": "x", "content_hash": "h", "fields": {"task": 1}}])


def test_a_notice_is_issued_once_and_records_its_deliveries():
    n = Notice("k", "training-hours", 1, "p1", "2023", "overdue", 0, "2023-12-31", "2024-01-05", "u1", [], {"zh": "…"})
    n.record_delivery_failure("email", "a@b", 1, "timeout")
    n.record_delivery("email", "a@b", 2)
    assert n.deliveries == {"email:a@b": "delivered"}
    assert Notice.create_id("k") == n.id
    with pytest.raises(NoticeError):
        Notice("k2", "r", 1, "s", "p", "postcard", 0, "2023-01-01", "2023-01-01", "u", [], {})


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([Unit, Center, Person, WorkPlan, TrainingRecord, TrainingRegister, Notice]), st.text(max_size=40))
def test_an_aggregates_id_is_the_uuid5_of_its_prefix_and_key(cls, key):
    from uuid import uuid5

    from domain.subject import ID_NAMESPACE
    made = cls.create_id(key)
    assert made == uuid5(ID_NAMESPACE, f"{cls.prefix}:{key}")
    assert (made.version, made.variant, str(made)) == (5, "specified in RFC 4122", str(uuid5(ID_NAMESPACE, f"{cls.prefix}:{key}")))
