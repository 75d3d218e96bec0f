"""The fast YAML reader (PyYAML's C parser) is used only where it reads exactly what the YAML 1.2
round-trip reader reads; anywhere else it steps aside (None) and the round-trip reader decides."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.facts_file import _plain, _yaml, fast_yaml


def _slow(text: str):
    try:
        return ("ok", _plain(_yaml().load(text)))
    except Exception as exc:  # noqa: BLE001 - any refusal
        return ("error", type(exc).__name__)


def _agrees_or_steps_aside(text: str) -> None:
    """The fast reader reads `text` as ruamel does (same values, same types), or answers None."""
    fast = fast_yaml(text)
    if fast is None:
        return
    kind, slow = _slow(text)
    assert kind == "ok" and fast == slow and repr(fast) == repr(slow), text


@pytest.mark.parametrize("text", [
    "a: yes", "a: no\nb: on\nc: off\nd: y", "a: 1\nb: 1.5\nc: true\nd: null\ne: ~\nf:\ng: 2023-01-01\nh: 'x'",
    "a: 010", "a: 1_000", "a: True", "a: 1\na: 2", "a: !!str 3", "a: !!str x", "<<: {a: 1}", "a: .inf",
    "a: 1e5", "a: -3", "a: 0o7", "a: 0x1F", "a: {b: [x, {c: no}]}", "a: &x 1\nb: *x", "a: '2023-01-01'",
    "1: a", "a: 2023.1", "- on\n- off", "a: !!int '3'", "a: -0.5", "a: 00", "a: '1'", 'a: "true"',
    "a: 2023-02-30", "a: [", "a: 中文", "a: 中文: x", "a: 12:30", "a: 1.", "a: +1", "a: 1.0e+3",
])
def test_the_fast_reader_agrees_or_steps_aside(text):
    _agrees_or_steps_aside(text)


def test_the_fast_reader_reads_the_ordinary_case():
    assert fast_yaml("a: 1\nb: [x, 2.5, true, null]\nc: 2023-01-01\nd: yes") == \
        {"a": 1, "b": ["x", 2.5, True, None], "c": "2023-01-01", "d": "yes"}


scalars = st.one_of(
    st.integers(-10**6, 10**6).map(str), st.sampled_from(["yes", "no", "on", "off", "true", "false", "True", "NULL",
                                                         "~", "", "0o17", "0x1f", "1_0", "1e3", ".5", "1.", "07",
                                                         "2023-01-01", "12:30", "-0", "+3", "'q'", '"7"']),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.text(alphabet="ab中 -:#'\"{}[],.01", min_size=1, max_size=6),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d", "2004", "-3", "0", "07", "'5'", "1.5"]), scalars),
                min_size=1, max_size=5))
def test_generated_documents(pairs):
    text = "\n".join(f"{k}: {v}" for k, v in pairs)
    _agrees_or_steps_aside(text)


def test_the_bundled_rule_files_calendar_and_names_are_read_fast_and_the_same():
    """Every command loads them: the fast reader must take them all, and read what ruamel reads."""
    from importlib import resources
    from pathlib import Path

    from ruamel.yaml import YAML

    from rules.calendar import WorkdayCalendar
    from rules.catalogue import _validated
    from rules.catalogue import _yaml as rule_yaml
    root = Path(str(resources.files("rules")))
    files = sorted((root / "files").rglob("*.yaml"))
    assert len(files) >= 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        fast = fast_yaml(text)
        assert fast is not None, path
        assert _validated(fast, str(path)) == _validated(rule_yaml().load(text), str(path))
    text = (root / "calendar" / "cn-workdays.yaml").read_text(encoding="utf-8")
    assert fast_yaml(text) is None  # its years are integer keys: only when asked for
    calendar = fast_yaml(text, int_keys=True)
    assert calendar is not None
    assert WorkdayCalendar.from_data(calendar) == WorkdayCalendar.from_data(YAML(typ="safe").load(text))
    text = (root / "collective_names.yaml").read_text(encoding="utf-8")
    assert fast_yaml(text) == YAML(typ="safe").load(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "2004", "-3", "0", "07", "'5'", "1.5", "+2"]), scalars),
                min_size=1, max_size=5))
def test_integer_keys_when_asked_for_are_read_as_the_safe_reader_reads_them(pairs):
    from ruamel.yaml import YAML
    text = "\n".join(f"{k}: {v}" for k, v in pairs)
    fast = fast_yaml(text, int_keys=True)
    if fast is None:
        return
    y = YAML(typ="safe")
    y.constructor.add_constructor("tag:yaml.org,2002:timestamp", lambda c, n: str(c.construct_scalar(n)))
    assert repr(fast) == repr(y.load(text)), text


def test_a_shipped_data_file_the_fast_reader_declines_is_read_by_ruamel_the_same_way():
    from rules.yamltext import load_yaml
    text = "2024: {holidays: [{date: 2024-01-01, name: 元旦}]}\nflag: !!str yes\n"  # a tag: fast steps aside
    assert fast_yaml(text, int_keys=True) is None
    assert load_yaml(text, int_keys=True) == {2024: {"holidays": [{"date": "2024-01-01", "name": "元旦"}]},
                                              "flag": "yes"}
    assert load_yaml(text.replace("!!str yes", "ok"), int_keys=True) == \
        {2024: {"holidays": [{"date": "2024-01-01", "name": "元旦"}]}, "flag": "ok"}


def _block(value, indent: int = 0) -> str:
    """A nested value (leaves: scalar texts as they are written) as block YAML."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "\n".join(f"{pad}{k}:" + (("\n" + _block(v, indent + 2)) if isinstance(v, (dict, list)) and v
                                          else " " + _block(v)) for k, v in value.items())
    if isinstance(value, list):
        if not value:
            return "[]"
        return "\n".join(f"{pad}-" + (("\n" + _block(v, indent + 2)) if isinstance(v, (dict, list)) and v
                                       else " " + _block(v)) for v in value)
    return value


nested = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["a", "b", "c", "07", "2004", "'a'", "x y"]), inner,
                                            max_size=3)),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["a", "b", "tasks", "document", "2004"]), nested, min_size=1, max_size=4))
def test_generated_nested_documents(doc):
    """Mappings and lists inside each other (as a plan file nests them), in block style."""
    text = _block(doc)
    _agrees_or_steps_aside(text)


@pytest.mark.parametrize("text", [
    "a: &x {b: 1}\nc: *x", "a: &x [1, 2]\nb: *x", "a: &x\n  b: *x", "- &x [*x]", "a: &s text\nb: *s",
    "a: {b: [1, {c: [x, y]}]}\nd: []\ne: {}", "a:\n  - b: 1\n    c: [2, 3.5]\n  - d: null",
])
def test_aliases_and_nesting_agree_or_step_aside(text):
    _agrees_or_steps_aside(text)


def test_a_collection_met_twice_or_inside_itself_steps_aside():
    assert fast_yaml("a: &x {b: 1}\nc: *x") is None
    assert fast_yaml("a: &x\n  b: *x") is None  # (it would never end)
    assert fast_yaml("a: &s text\nb: *s") == {"a": "text", "b": "text"}  # a text alias is just the text


def test_a_plan_file_as_the_benchmark_writes_it_is_read_fast_and_the_same(tmp_path):
    from adapters.facts_file import yaml_text
    from bench.workload import Workload, write_plan_files
    path = write_plan_files(Workload("small"), tmp_path)[0]
    text = path.read_text(encoding="utf-8")
    assert yaml_text(str(path), text) is text  # no escapes: nothing to join
    fast = fast_yaml(text)
    assert fast is not None and fast["tasks"]
    assert repr(fast) == repr(_plain(_yaml().load(text)))
