"""The generators' shared output layout, written atomically and resumably.

    OUT/imgs/00000.png     the generated image (224 x 632), as the release names it
    OUT/masks/00000.png    where the defect was put ({0, 255}; empty for maskless methods)
    OUT/manifest.csv       one row per finished image: index, source ids, prompt, seed, settings

An index counts as done only when its image, its mask and its manifest row all exist, so a
crash between writes just redoes that index.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from PIL import Image


class OutputWriter:
    def __init__(self, out: Path | str) -> None:
        self.out = Path(out)
        self.manifest = self.out / "manifest.csv"

    def image_path(self, index: int) -> Path:
        return self.out / "imgs" / f"{index:05d}.png"

    def mask_path(self, index: int) -> Path:
        return self.out / "masks" / f"{index:05d}.png"

    def rows(self) -> list[dict]:
        if not self.manifest.is_file():
            return []
        with self.manifest.open(newline="") as handle:
            return list(csv.DictReader(handle))

    def done(self) -> set[int]:
        """Indices with a manifest row, an image and a mask."""
        return {int(r["index"]) for r in self.rows() if self.image_path(int(r["index"])).is_file() and self.mask_path(int(r["index"])).is_file()}

    def write(self, index: int, image: Image.Image, mask: np.ndarray, row: dict) -> None:
        """Image and mask (temp name, then rename), then the manifest row."""
        for path, picture in ((self.image_path(index), image), (self.mask_path(index), Image.fromarray((np.asarray(mask) > 0).astype(np.uint8) * 255))):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.png")
            picture.save(tmp)
            tmp.replace(path)
        rows = [r for r in self.rows() if int(r["index"]) != index] + [{"index": index, **row}]
        rows.sort(key=lambda r: int(r["index"]))
        fields = list(dict.fromkeys(k for r in rows for k in r))
        tmp = self.manifest.with_name(".manifest.csv.tmp")
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(self.manifest)
