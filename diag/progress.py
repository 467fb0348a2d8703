"""What a long run shows on the terminal: one line per step with its time, a bar for long steps.

    with progress.step("generate diag augmented_100"):   # prints "  generate diag augmented_100: 95.2 s"
        for batch in progress.bar(batches, desc="DIAG"):  # a tqdm bar on the same terminal
            ...

A notebook that ``diag reproduce`` executes runs in a Jupyter kernel whose output goes into the
notebook, not to the terminal. So ``reproduce`` names a file in ``DIAG_CONSOLE``; the kernel
writes its step lines and bars there and ``reproduce`` copies them to its own stderr as they come
(``follow_console``). Each finished step is also appended, as one JSON line, to the file named in
``DIAG_STEP_LOG``: ``benchmarks/book.py`` reads it into its timing table. Outside ``reproduce``
(a notebook run by hand, the CLI) the lines go to stderr and the bars are tqdm's usual ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, Iterable, Iterator

CONSOLE_ENV = "DIAG_CONSOLE"
STEP_LOG_ENV = "DIAG_STEP_LOG"


def redirected() -> bool:
    """Whether this process writes its progress to a file ``reproduce`` follows (inside its kernels)."""
    return bool(os.environ.get(CONSOLE_ENV))


def console() -> IO[str]:
    """Where step lines and bars go: ``DIAG_CONSOLE``'s file, or stderr."""
    path = os.environ.get(CONSOLE_ENV)
    if not path:
        return sys.stderr
    return open(path, "a", buffering=1)  # noqa: SIM115 - closed by the caller (bar) or at exit (say)


CLEAR_LINE = "\r\x1b[K"  # back to the line's start and clear it: a bar may be drawn there


def say(line: str) -> None:
    """One line on the terminal (through ``DIAG_CONSOLE`` inside a kernel), over any bar drawn there."""
    stream = console()
    try:
        # the followed console file is copied to a terminal (or stripped of escapes on the way to a log)
        prefix = CLEAR_LINE if stream is not sys.stderr or sys.stderr.isatty() else ""
        stream.write(prefix + line + "\n")
        stream.flush()
    finally:
        if stream is not sys.stderr:
            stream.close()


def record(entry: dict) -> None:
    """Append one finished step to ``DIAG_STEP_LOG`` (nothing when it is not set)."""
    path = os.environ.get(STEP_LOG_ENV)
    if path:
        with open(path, "a") as log:
            log.write(json.dumps(entry) + "\n")


@contextlib.contextmanager
def step(name: str, **facts) -> Iterator[dict]:
    """Time one step; say it (unless ``cached``) and log it when it ends. The caller may add facts."""
    entry = {"step": name, **facts}
    start = time.perf_counter()
    try:
        yield entry
    finally:
        entry["seconds"] = round(time.perf_counter() - start, 2)
        if not entry.get("cached"):  # a result found made is logged, not shown: the terminal lists work done
            say(f"  {name}: {entry['seconds']:.1f} s")
        record(entry)


def bar(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", disable: bool = False, **kw):
    """A tqdm bar: on the followed console inside ``reproduce``'s kernels, tqdm.auto's elsewhere."""
    if redirected():
        from tqdm import tqdm

        stream = console()
        kw.setdefault("ncols", 90)
        kw.setdefault("mininterval", 2.0)
        progress = tqdm(iterable, total=total, desc=f"    {desc}", file=stream, disable=disable, **kw)
        original_close = progress.close

        def close() -> None:
            original_close()
            stream.close()

        progress.close = close
        return progress
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=disable, **kw)


@contextlib.contextmanager
def follow_console(path: Path, out: IO[str] | None = None, every: float = 0.5) -> Iterator[None]:
    """Copy what kernels write to ``path`` onto ``out`` (stderr) while the block runs."""
    out = out or sys.stderr
    path.touch()
    stop = threading.Event()

    terminal = out.isatty()

    def copy() -> None:
        with open(path) as source:
            while True:
                chunk = source.read()
                if chunk:
                    out.write(chunk if terminal else chunk.replace("\x1b[K", ""))  # a log file gets no escapes
                    out.flush()
                elif stop.is_set():
                    return
                else:
                    stop.wait(every)

    thread = threading.Thread(target=copy, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
