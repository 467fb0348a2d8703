"""The generators' shared output layout, written atomically and resumably.

    OUT/set.json           what the set is: generator, data fingerprint, every setting (written first)
    OUT/imgs/00000.png     the generated image (224 x 632), as the release names it
    OUT/masks/00000.png    where the defect was put ({0, 255}; empty for maskless methods)
    OUT/meta/00000.json    that image's manifest row, with the SHA-1 of its PNG (written last)
    OUT/manifest.csv       all rows, rebuilt from meta/ (index, source ids, prompt, seed, settings)

An index counts as done only when its image, mask and row all exist, so a crash between
writes just redoes that index. A folder is resumed only when its ``set.json`` records the
same generator, data and settings; otherwise the run stops and names each difference, and
a non-empty folder without ``set.json`` (not made by diag) is never written into; a set
with no finished image (a run that failed at its start) may be restarted with other
settings. Whoever reads a set (``check_set``) checks its record: the data it was made from,
its generator, and that each image is still the one written. Each index has its own files,
so several processes (or GPUs) can write into one folder at once; ``finish`` merges the rows.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from diag.errors import DataError, DiagError
from diag.files import (
    PNG_OPTIONS,
    ensure_writable_folder,
    is_stale_temporary,
    is_temporary,
    write_atomic,
    write_text_atomic,
)

SET_FILE = "set.json"
MAX_IMAGES = 100_000  # a set's size limit: a typo such as 1000000000 stops at once instead of filling memory
LAYOUT = ("imgs", "masks", "meta")


def recorded_settings(config) -> dict:
    """A generator's config as each image's row records it: device, batch size and gradient checkpointing
    (In&Out's memory switch) do not change an image."""
    return {k: v for k, v in asdict(config).items() if k not in ("device", "batch_size", "gradient_checkpointing")}


def settings_mismatch(recorded: dict, wanted: dict) -> dict[str, tuple]:
    """Keys of either whose values differ; ``wanted`` goes through JSON first, as the record did."""
    wanted = json.loads(json.dumps(wanted))
    keys = dict.fromkeys([*recorded, *wanted])
    return {key: (recorded.get(key), wanted.get(key)) for key in keys if recorded.get(key) != wanted.get(key)}


def refuse_mixed_settings(where: Path, recorded: dict, wanted: dict, what: str) -> None:
    """Raise if ``recorded`` (an existing set or log) disagrees with ``wanted``; nothing is deleted."""
    differ = settings_mismatch(recorded, wanted)
    if differ:
        listed = ", ".join(f"{key}={old!r} (this run: {new!r})" for key, (old, new) in differ.items())
        raise DataError(
            f"{where}: {what} made with {listed}. Pass those settings to resume it, "
            "or move the folder away to make a new set."
        )


class OutputWriter:
    def __init__(self, out: Path | str) -> None:
        self.out = Path(out)
        self.manifest = self.out / "manifest.csv"

    def image_path(self, index: int) -> Path:
        return self.out / "imgs" / f"{index:05d}.png"

    def mask_path(self, index: int) -> Path:
        return self.out / "masks" / f"{index:05d}.png"

    def meta_path(self, index: int) -> Path:
        return self.out / "meta" / f"{index:05d}.json"

    def done(self) -> set[int]:
        """Indices with an image, a mask and a row."""
        metas = (self.out / "meta").glob("[0-9]*.json") if (self.out / "meta").is_dir() else []
        indices = {int(p.stem) for p in metas}
        return {i for i in indices if self.image_path(i).is_file() and self.mask_path(i).is_file()}

    def recorded(self) -> dict | None:
        """The set's record (``set.json``), or None for a folder that has none."""
        path = self.out / SET_FILE
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: not valid JSON ({error}); move the folder away to make a new set") from None

    def prepare(self, generator: str, data: Path | str, settings: dict) -> dict:
        """Check the folder may take this set, record it, and return what each row records.

        Refuses a folder of another generator, data or settings (naming each difference) and a
        non-empty folder that diag did not make; removes a crash's temporary files.
        """
        from diag.data.fingerprint import data_fingerprint

        wanted = {"generator": generator, "data_fingerprint": data_fingerprint(data), **settings}
        ensure_writable_folder(self.out)
        recorded = self.recorded()
        if recorded is None:
            # set.json itself may appear here at any moment: another part of this set, starting beside us
            foreign = (
                sorted(
                    str(p.relative_to(self.out)) for p in self.out.rglob("*") if p.is_file() and p.name != SET_FILE
                )
                if self.out.is_dir()
                else []
            )
            if foreign:
                shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
                raise DataError(
                    f"{self.out}: not empty and not a set made by diag (no {SET_FILE}); it holds {shown}. "
                    "Choose an empty or new --out."
                )
        elif settings_mismatch(recorded, wanted):
            done = len(self.done())
            if done:
                refuse_mixed_settings(self.out, recorded, wanted, f"this set ({done} images) was")
            self.clear_unfinished()  # a start that failed before its first image: nothing to keep
            recorded = None
        self.remove_temporaries()
        if recorded is None:
            write_text_atomic(self.out / SET_FILE, json.dumps(wanted, indent=2, default=str) + "\n")
        return wanted

    def clear_unfinished(self) -> None:
        """Remove what diag wrote of a set that has no finished image (its layout files only)."""
        for folder in LAYOUT:
            if (self.out / folder).is_dir():
                for path in (self.out / folder).iterdir():
                    if path.is_file() and (path.name[:1].isdigit() or is_temporary(path)):
                        path.unlink()
        self.manifest.unlink(missing_ok=True)

    def remove_temporaries(self) -> None:
        for folder in LAYOUT:
            if (self.out / folder).is_dir():
                for path in (self.out / folder).iterdir():
                    if is_stale_temporary(path):
                        path.unlink(missing_ok=True)

    def write(self, index: int, image: Image.Image, mask: np.ndarray, row: dict) -> None:
        """Image, then mask, then the row; each under a temporary name, then renamed."""
        mask_image = Image.fromarray((np.asarray(mask) > 0).astype(np.uint8) * 255)
        buffer = io.BytesIO()
        image.save(buffer, **PNG_OPTIONS)
        png = buffer.getvalue()
        write_atomic(self.image_path(index), lambda p: p.write_bytes(png))
        write_atomic(self.mask_path(index), lambda p: mask_image.save(p, **PNG_OPTIONS))
        row = {"index": index, **row, "image_sha1": hashlib.sha1(png).hexdigest()}
        write_text_atomic(self.meta_path(index), json.dumps(row, default=str))

    def rows(self) -> list[dict]:
        return [json.loads(self.meta_path(i).read_text()) for i in sorted(self.done())]

    def finish(self) -> Path:
        """(Re)write manifest.csv from the finished rows, sorted by index; left as it is when unchanged
        (a finished set read again changes nothing, so the book's pages built from it stay valid)."""
        rows = self.rows()
        fields = list(dict.fromkeys(k for r in rows for k in r))
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
        data = text.getvalue().encode()
        if self.manifest.is_file() and self.manifest.read_bytes() == data:
            return self.manifest
        return write_atomic(self.manifest, lambda path: path.write_bytes(data))

    @contextlib.contextmanager
    def interruptible(self) -> Iterator[None]:
        """Ctrl-C: write the manifest of the finished images, then stop with one line."""
        try:
            yield
        except KeyboardInterrupt:
            self.finish()
            raise DiagError(
                f"{self.out}: interrupted with {len(self.done())} images finished; "
                "run the same command again to complete the set"
            ) from None


def set_problems(
    folder: Path | str,
    data: Path | str,
    n_images: int,
    generator: str | None = None,
    procedural: bool | None = None,
    positives: list[str] | None = None,
) -> list[str]:
    """Why the first ``n_images`` of the set at ``folder`` cannot be used as one made from ``data``
    (by ``generator``; with procedural masks or not; from the real positives ``positives``, or from
    all of them when None and a generator is named): one line per problem, empty when none."""
    from diag.data.fingerprint import data_fingerprint

    folder = Path(folder)
    writer = OutputWriter(folder)
    try:
        record = writer.recorded()
    except DataError as error:
        return [str(error)]
    if record is None:
        state = "its images" if (folder / "imgs").is_dir() else "it"
        return [f"{folder}: no {SET_FILE}, so {state} cannot be traced to data and settings "
                "(not a set made by diag, or its record was deleted); generate it again"]
    problems = []
    fingerprint = data_fingerprint(data)
    if record.get("data_fingerprint") != fingerprint:
        problems.append(
            f"{folder}: made from other data (data_fingerprint {record.get('data_fingerprint')}; "
            f"{data} is {fingerprint})"
        )
    if generator is not None and record.get("generator") != generator:
        problems.append(f"{folder}: made by {record.get('generator')!r}, but it stands where a {generator!r} set belongs")
    if procedural is not None and (record.get("masks") == "procedural") != procedural:
        problems.append(
            f"{folder}: made with masks={record.get('masks')!r}, but it stands where a set with "
            f"{'procedural' if procedural else 'real'} masks belongs"
        )
    made_from = record.get("positives")
    if generator is not None and made_from != (list(positives) if positives is not None else None):
        said = lambda ids: "every real positive" if ids is None else f"{len(ids)} drawn real positives"  # noqa: E731
        problems.append(f"{folder}: made from {said(made_from)}, but it stands where a set made from "
                        f"{said(positives)} belongs")
    done = writer.done()
    if len([i for i in range(n_images) if i in done]) < n_images:
        problems.append(f"{folder}: {len(done)} finished images, fewer than the {n_images} asked for")
        return problems
    changed = []
    for index in range(n_images):
        recorded_hash = json.loads(writer.meta_path(index).read_text()).get("image_sha1")
        if recorded_hash is None or hashlib.sha1(writer.image_path(index).read_bytes()).hexdigest() != recorded_hash:
            changed.append(index)
    if changed:
        problems.append(
            f"{folder}: {len(changed)} image(s) differ from what the set recorded (e.g. imgs/{changed[0]:05d}.png; "
            "a set made before diag recorded each image's hash counts as changed); generate it again"
        )
    return problems


def check_set(
    folder: Path | str,
    data: Path | str,
    n_images: int,
    generator: str | None = None,
    procedural: bool | None = None,
    positives: list[str] | None = None,
) -> list[Path]:
    """The first ``n_images`` images of a generated set, once ``set_problems`` finds none (else one DataError)."""
    problems = set_problems(folder, data, n_images, generator, procedural, positives)
    if problems:
        raise DataError("; ".join(problems))
    writer = OutputWriter(folder)
    return [writer.image_path(i) for i in range(n_images)]
