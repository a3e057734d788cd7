"""A calm tool: warnings captured and summarised, a progress line on a terminal only.

TVM's C++ logger writes warnings (``[12:00:00] .../transform.h:1261: Warning: Fast mode
segfaults ...``) straight to file descriptor 2, below Python, so :func:`capture_warnings`
redirects fd 2 into a temporary file around a block and also records Python ``warnings`` (torch's
tracer and export warnings). Each captured line becomes one message; :func:`summarize` counts
repeats. :func:`step` shows ``desc  elapsed`` while a long step runs, on a terminal and only once
the CLI called :func:`enable_progress`; the library itself never draws progress.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
import warnings
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_TVM_LOG = re.compile(r"^\[\d{2}:\d{2}:\d{2}\] ")   # the timestamp TVM's logger puts first
_active: list[list[str]] = []                       # messages of the open captures, outermost first
_owner: int | None = None                           # the thread that opened them
_progress_stream = None                             # a terminal, set by enable_progress()


def _python_warning(w: warnings.WarningMessage) -> str:
    return f"{w.category.__name__}: {w.message} ({Path(w.filename).name}:{w.lineno})"


@contextmanager
def capture_warnings() -> Iterator[list[str]]:
    """Capture everything written to fd 2 and every Python warning inside the block.

    Yields a list that holds, once the block exits, one message per captured line or warning
    (TVM's timestamp removed, so repeats compare equal). Captures nest: an inner block's messages
    also count for the outer ones. If the block raises, the outermost capture adds the messages to
    the exception as a note, so no diagnostic is lost. fd 2 belongs to the whole process: while one
    thread captures, a capture opened by another thread does nothing (the first one gets the lines).
    """
    messages: list[str] = []
    global _owner
    if _active and _owner != threading.get_ident():
        # fd 2 is process-wide: another thread is capturing, its capture takes these lines too
        yield messages
        return
    _owner = threading.get_ident()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    _active.append(messages)
    try:
        with tempfile.TemporaryFile() as log, warnings.catch_warnings(record=True) as caught:
            os.dup2(log.fileno(), 2)
            try:
                yield messages
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                log.seek(0)
                text = log.read().decode(errors="replace")
                messages += [_TVM_LOG.sub("", line) for line in text.splitlines() if line.strip()]
                messages += [_python_warning(w) for w in caught]
    except Exception as e:
        if len(_active) == 1 and messages:   # the outermost capture: nobody else will show them
            e.add_note(format_summary(messages, verbose=True).rstrip("\n"))
        raise
    finally:
        os.close(saved)
        _active.pop()
        if _active:
            _active[-1].extend(messages)


def summarize(messages: list[str]) -> dict:
    """``{"count": n, "messages": [{"message": text, "count": k}, ...]}`` in first-seen order."""
    counts = Counter(messages)
    return {"count": len(messages),
            "messages": [{"message": m, "count": counts[m]} for m in dict.fromkeys(messages)]}


def format_summary(messages: list[str], verbose: bool = False) -> str:
    """One line with the number of captured warnings, or with ``verbose`` every distinct message
    with its count; empty when nothing was captured."""
    if not messages:
        return ""
    s = summarize(messages)
    if not verbose:
        return (f"{s['count']} warning{'s' if s['count'] != 1 else ''} captured "
                f"({len(s['messages'])} distinct; --verbose lists them)\n")
    lines = [f"{s['count']} captured warning{'s' if s['count'] != 1 else ''}:"]
    lines += [f"  {m['count']:>4} x {m['message']}" for m in s["messages"]]
    return "\n".join(lines) + "\n"


def enable_progress(on: bool = True) -> bool:
    """Draw progress lines from now on if ``on`` and stderr is a terminal; returns whether it will.

    The lines go to a duplicate of the current fd 2, so they still reach the terminal while
    :func:`capture_warnings` redirects fd 2.
    """
    global _progress_stream
    if _progress_stream is not None:
        _progress_stream.close()
        _progress_stream = None
    if on and os.isatty(2):
        _progress_stream = os.fdopen(os.dup(2), "w", buffering=1)
    return _progress_stream is not None


@contextmanager
def step(desc: str) -> Iterator[None]:
    """Show ``desc`` and its elapsed time on the terminal while the block runs (erased after)."""
    if _progress_stream is None:
        yield
        return
    from tqdm import tqdm

    bar = tqdm(total=None, desc=desc, bar_format="{desc}  {elapsed}", file=_progress_stream,
               leave=False)
    stop = threading.Event()

    def tick():   # tqdm redraws only on update(); a long step would look frozen
        while not stop.wait(0.5):
            bar.refresh()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
        bar.close()


def progress_iter(iterable, desc: str, total: int | None = None):
    """``iterable`` with a tqdm bar on the terminal (after :func:`enable_progress`), else as is."""
    if _progress_stream is None:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, file=_progress_stream, leave=False)
