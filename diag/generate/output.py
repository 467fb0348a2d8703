"""The generators' shared output layout, written atomically and resumably.

    OUT/imgs/00000.png     the generated image (224 x 632), as the release names it
    OUT/masks/00000.png    where the defect was put ({0, 255}; empty for maskless methods)
    OUT/meta/00000.json    that image's manifest row (written last)
    OUT/manifest.csv       all rows, rebuilt from meta/ (index, source ids, prompt, seed, settings)

An index counts as done only when its image, mask and row all exist, so a crash between
writes just redoes that index. A folder made with other settings is never resumed (the two
halves would not be one set): ``check_settings`` names what differs. Each index has its own
files, so several processes (or GPUs) can write into one folder at once; ``finish`` merges
the rows.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PIL import Image

from diag.data.ksdd2 import DataError


def _replace_atomically(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}{path.suffix}")
    write(tmp)
    tmp.replace(path)


def recorded_settings(config) -> dict:
    """A generator's config as each image's row records it: device and batch size do not change an image."""
    return {k: v for k, v in asdict(config).items() if k not in ("device", "batch_size")}


def settings_mismatch(recorded: dict, wanted: dict) -> dict[str, tuple]:
    """Keys in both whose values differ; ``wanted`` goes through JSON first, as the rows did."""
    wanted = json.loads(json.dumps(wanted))
    return {key: (recorded[key], value) for key, value in wanted.items() if key in recorded and recorded[key] != value}


def refuse_mixed_settings(where: Path, recorded: dict, wanted: dict, what: str) -> None:
    """Raise if ``recorded`` (an existing row or log) disagrees with ``wanted``; nothing is deleted."""
    differ = settings_mismatch(recorded, wanted)
    if differ:
        listed = ", ".join(f"{key}={old!r} (this run: {new!r})" for key, (old, new) in differ.items())
        raise DataError(f"{where}: {what} made with {listed}. Pass those settings to resume it, "
                        "or move the folder away to make a new set.")


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

    def check_settings(self, settings: dict) -> None:
        """Refuse to add images made with other settings to the ones already here."""
        done = sorted(self.done())
        if done:
            recorded = json.loads(self.meta_path(done[0]).read_text())
            refuse_mixed_settings(self.out, recorded, settings, f"its {len(done)} images were")

    def write(self, index: int, image: Image.Image, mask: np.ndarray, row: dict) -> None:
        """Image, then mask, then the row; each under a temporary name, then renamed."""
        mask_image = Image.fromarray((np.asarray(mask) > 0).astype(np.uint8) * 255)
        _replace_atomically(self.image_path(index), lambda p: image.save(p, format="PNG"))
        _replace_atomically(self.mask_path(index), lambda p: mask_image.save(p, format="PNG"))
        _replace_atomically(self.meta_path(index), lambda p: p.write_text(json.dumps({"index": index, **row})))

    def rows(self) -> list[dict]:
        return [json.loads(self.meta_path(i).read_text()) for i in sorted(self.done())]

    def finish(self) -> Path:
        """(Re)write manifest.csv from the finished rows, sorted by index."""
        rows = self.rows()
        fields = list(dict.fromkeys(k for r in rows for k in r))

        def write(path: Path) -> None:
            with path.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=fields)
                writer.writeheader()
                writer.writerows(rows)

        _replace_atomically(self.manifest, write)
        return self.manifest
