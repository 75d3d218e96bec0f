"""The collector is paused for bulk work and resumes afterwards — nested, and on errors too."""
from __future__ import annotations

import gc

import pytest

from adapters.gcpause import paused_gc


def test_paused_inside_resumed_after_nested_and_failing_pauses():
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with pytest.raises(RuntimeError):
            with paused_gc():
                raise RuntimeError("boom")
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled():
    gc.disable()
    try:
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
