"""The generators' shared output layout, written atomically and resumably.

    OUT/imgs/00000.png     the generated image (224 x 632), as the release names it
    OUT/masks/00000.png    where the defect was put ({0, 255}; empty for maskless methods)
    OUT/meta/00000.json    that image's manifest row (written last)
    OUT/manifest.csv       all rows, rebuilt from meta/ (index, source ids, prompt, seed, settings)

An index counts as done only when its image, mask and row all exist, so a crash between
writes just redoes that index. Each index has its own files, so several processes (or
GPUs) can write into one folder at once; ``finish`` merges the rows.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image


def _replace_atomically(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}{path.suffix}")
    write(tmp)
    tmp.replace(path)


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
