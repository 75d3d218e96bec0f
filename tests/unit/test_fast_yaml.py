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


@pytest.mark.parametrize("text", [
    "a: yes", "a: no\nb: on\nc: off\nd: y", "a: 1\nb: 1.5\nc: true\nd: null\ne: ~\nf:\ng: 2023-01-01\nh: 'x'",
    "a: 010", "a: 1_000", "a: True", "a: 1\na: 2", "a: !!str 3", "a: !!str x", "<<: {a: 1}", "a: .inf",
    "a: 1e5", "a: -3", "a: 0o7", "a: 0x1F", "a: {b: [x, {c: no}]}", "a: &x 1\nb: *x", "a: '2023-01-01'",
    "1: a", "a: 2023.1", "- on\n- off", "a: !!int '3'", "a: -0.5", "a: 00", "a: '1'", 'a: "true"',
    "a: 2023-02-30", "a: [", "a: 中文", "a: 中文: x", "a: 12:30", "a: 1.", "a: +1", "a: 1.0e+3",
])
def test_the_fast_reader_agrees_or_steps_aside(text):
    fast = fast_yaml(text)
    if fast is None:
        return
    kind, slow = _slow(text)
    assert kind == "ok" and fast == slow and repr(fast) == repr(slow)


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
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), scalars), min_size=1, max_size=5))
def test_generated_documents(pairs):
    text = "\n".join(f"{k}: {v}" for k, v in pairs)
    fast = fast_yaml(text)
    if fast is None:
        return
    kind, slow = _slow(text)
    assert kind == "ok" and repr(fast) == repr(slow), text
