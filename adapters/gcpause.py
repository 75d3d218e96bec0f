"""Pausing Python's cyclic garbage collector around bulk work.

Judging or loading a large record allocates hundreds of thousands of small objects that all
stay alive until the work is done; each allocation burst triggers collections that walk every
object in the process (the read model included), which roughly doubled a check at the medium
benchmark scale. The bulk work creates no reference cycles that need collecting while it runs,
so the collector is paused for its duration and runs normally again afterwards.

Process-wide and reentrant: the collector resumes when the outermost pause ends (threads
included), and only if it was enabled when the first pause began.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_depth = 0
_resume = False


@contextmanager
def paused_gc() -> Iterator[None]:
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                gc.enable()
