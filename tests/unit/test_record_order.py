"""The order a file's facts are applied in (adapters.record._order): registrations first (units
before centers, people and plans), then events, answers after what they answer, retractions
last; in file order within each group."""
from hypothesis import given
from hypothesis import strategies as st

from adapters.record import Located, _order
from domain.facts import Fact

_TYPES = ["unit-registered", "center-registered", "person-registered", "plan-published", "training-recorded",
          "center-major-event", "center-major-event-notified", "rectification-ordered", "rectification-completed",
          "rectification-failed", "task-completed", "event-retracted"]
_GROUP = {"unit-registered": 0, "center-registered": 1, "person-registered": 1, "plan-published": 1,
          "center-major-event-notified": 3, "rectification-completed": 3, "rectification-failed": 3,
          "event-retracted": 4}


@given(st.lists(st.sampled_from(_TYPES), max_size=40))
def test_a_file_is_applied_registrations_first_answers_after_events_retractions_last(types):
    items = [Located(Fact(f"f{i}", t, {}), None, "shanghai") for i, t in enumerate(types)]
    ordered = _order(items)
    assert sorted(id(x) for x in ordered) == sorted(id(x) for x in items)  # each once
    groups = [_GROUP.get(x.fact.type, 2) for x in ordered]
    assert groups == sorted(groups)
    for g in set(groups):  # file order within a group
        positions = [int(x.fact.id[1:]) for x in ordered if _GROUP.get(x.fact.type, 2) == g]
        assert positions == sorted(positions)


def test_a_register_of_training_records_keeps_its_order():
    items = [Located(Fact(f"t{i}", "training-recorded", {}), None, "shanghai") for i in range(5)]
    assert _order(items) == items
