"""Pausing Python's cyclic garbage collector around bulk work.

Judging or loading a large record allocates hundreds of thousands of small objects that all
stay alive until the work is done; each allocation burst triggers collections that walk every
object in the process (the read model included), which roughly doubled a check at the medium
benchmark scale. The bulk work creates no reference cycles that need collecting while it runs,
so the collector is paused for its duration and runs normally again afterwards.

The read side (check, replay) may also ask to *keep* what it leaves alive: at the end of the
outermost pause, every object the collector tracks is moved to its permanent generation
(`gc.freeze`), so that the collector does not walk the read model and the judgments handed back
once more (at the medium scale that first walk over ~360,000 objects took 0.1 s, paid by whatever
allocated next). Frozen objects are still freed when their last reference goes; only reference
cycles among them would wait for `gc.unfreeze()`. The read side makes none
(tests/integration/test_store.py checks a whole check, replay and re-judgment); loading does
(SQLAlchemy's sessions), so it pauses without keeping. But whatever else is alive when a keeping
pause ends is frozen too (in a service: a request's leftovers not yet collected), so a
long-running process hands it all back now and then (`release_kept`: the service does it after
its daily sweep), and the collector walks it once.

Process-wide and reentrant: the collector resumes when the outermost pause ends (threads
included), and only if it was enabled when the first pause began; what is left alive is kept
only if every pause that overlapped asked to keep (a load in another thread, say, does not).
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_depth = 0
_resume = False
_keep = False


@contextmanager
def paused_gc(keep: bool = False) -> Iterator[None]:
    global _depth, _resume, _keep
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            _keep = True
            gc.disable()
        _keep = _keep and keep
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                if _keep:
                    gc.freeze()
                if _resume:
                    gc.enable()


def release_kept() -> int:
    """Hand what keeping froze back to the collector and collect (a full walk): the reference
    cycles among kept objects that have become garbage are freed. Not while a pause runs
    (returns -1 then: the next call does it). Returns what the collector found unreachable."""
    with _lock:
        if _depth:
            return -1
        gc.unfreeze()
    return gc.collect()
