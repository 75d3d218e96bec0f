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


def test_a_keeping_pause_moves_what_it_leaves_alive_out_of_the_collectors_walks():
    gc.unfreeze()
    try:
        with paused_gc(keep=True):
            with paused_gc(keep=True):  # nested: the outermost pause keeps
                kept = [[n] for n in range(1000)]
            assert gc.get_freeze_count() == 0
        assert gc.isenabled() and gc.get_freeze_count() >= 1000
        assert all(not gc.is_finalized(x) for x in kept)  # (still alive, and freed normally below)
        frozen = gc.get_freeze_count()
        del kept
        assert gc.get_freeze_count() <= frozen - 1000  # freed by reference counting, frozen or not
    finally:
        gc.unfreeze()


def test_a_pause_that_does_not_keep_cancels_keeping_for_the_pauses_it_overlaps():
    gc.unfreeze()
    try:
        with paused_gc():
            made = [[n] for n in range(100)]
        assert gc.get_freeze_count() == 0
        with paused_gc(keep=True):
            with paused_gc():  # e.g. a load in another thread, whose sessions make cycles
                made = [[n] for n in range(100)]
        assert gc.get_freeze_count() == 0 and made
    finally:
        gc.unfreeze()


def test_releasing_what_was_kept_frees_the_cycles_among_it():
    import weakref
    from adapters.gcpause import release_kept

    class Node:
        pass
    gc.unfreeze()
    try:
        with paused_gc(keep=True):
            a, b = Node(), Node()
            a.other, b.other = b, a  # a reference cycle: only the collector frees it
        gone = weakref.ref(a)
        del a, b
        gc.collect()
        assert gone() is not None  # kept: the collector does not walk it
        with paused_gc():
            assert release_kept() == -1  # not during a pause
        assert release_kept() >= 2 and gone() is None and gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
