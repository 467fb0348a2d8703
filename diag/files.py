"""Writing files so that a crash never leaves half a file, and hashing what was read.

Every file the package writes goes through ``write_atomic``: the content goes to a hidden
temporary name beside the target (``.NAME.PID.tmp``), then one rename puts it in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

from diag.errors import DataError

TEMP_SUFFIX = ".tmp"


def temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")


def is_temporary(path: Path) -> bool:
    """A temporary file of ``write_atomic`` (being written, or left by a crash between write and rename)."""
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)


def is_stale_temporary(path: Path) -> bool:
    """A temporary file whose writer is gone: safe to remove while other processes write beside it
    (the parts of one generated set run in several processes at once)."""
    if not is_temporary(path):
        return False
    pid = path.name.removesuffix(TEMP_SUFFIX).rsplit(".", 1)[-1]
    if not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return int(pid) == os.getpid()


MARKER = ".diag-partial"
"""A file ``new_folder`` puts in each folder it is still writing: only a folder holding it is a
leftover of ours (a killed run's), which a later run may remove. A user's ``.out.backup/`` is not."""


def is_our_leftover(folder: Path) -> bool:
    return folder.is_dir() and not folder.is_symlink() and (folder / MARKER).is_file()


@contextlib.contextmanager
def new_folder(out: Path | str) -> Iterator[Path]:
    """A hidden folder beside ``out`` to write into; it becomes ``out`` when the block succeeds and is
    removed on any failure, so nothing half-written is ever left. ``out`` must be missing or empty.
    Leftovers of an earlier run that was killed (SIGKILL runs no cleanup) are removed first: only
    folders that carry our marker, never another folder that merely shares the name's prefix."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder; choose another --out")
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out}: already exists and is not empty; choose another --out or remove it")
    ensure_writable_folder(out.parent)
    for stale in out.parent.glob(f".{out.name}.*"):
        if is_our_leftover(stale):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / MARKER).write_text("a folder diag is writing; removed or renamed when it finishes\n")
        yield tmp
        (tmp / MARKER).unlink()
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def refuse_foreign_folder(folder: Path, record: str, what: str) -> None:
    """A non-empty ``folder`` without diag's ``record`` file (or the ``MARKER`` of a run of ours still
    writing it) was not made by diag: never write into it."""
    if not folder.is_dir() or (folder / record).is_file() or (folder / MARKER).is_file():
        return
    held = sorted(p.name for p in folder.iterdir())
    if held:
        shown = ", ".join(held[:3]) + (f" and {len(held) - 3} more" if len(held) > 3 else "")
        raise DataError(
            f"{folder}: not empty and not {what} made by diag (no {record}); it holds {shown}. "
            "Choose an empty or new folder."
        )


def write_atomic(path: Path | str, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)``, then rename ``tmp`` onto ``path``; the temporary file never survives."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: Path | str, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def ensure_writable_folder(folder: Path | str, what: str = "--out") -> Path:
    """Make ``folder`` if needed and prove it takes a file: a one-line error before any compute."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder}: exists and is not a folder; choose another {what}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temporary_name(folder / ".write-test")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise DataError(f"{folder}: cannot write here ({error.strerror}); choose another {what}") from None
    return folder


def file_digest(path: Path | str, algorithm: str = "sha1") -> str:
    """The hex digest of one file, read in chunks (archives are large)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def sha1_of_files(paths: Iterable[Path], names: bool = True) -> str:
    """One SHA-1 over the files' names (optional) and bytes, in the given order."""
    digest = hashlib.sha1()
    for path in paths:
        if names:
            digest.update(Path(path).name.encode())
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


PNG_OPTIONS = {"format": "PNG", "compress_level": 1}
"""How every image we write is saved: lossless, and level 1 because our noisy surfaces barely
compress anyway (level 6, PIL's default, wrote 4x slower for files 6 % larger)."""


def write_csv_atomic(frame, path: Path) -> None:
    """A pandas table written as CSV, atomically (``write_atomic``)."""
    write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))
