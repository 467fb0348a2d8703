"""Mask sources and the shared output layout."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diag.data.ksdd2 import read_manifest
from diag.errors import DataError
from diag.generate.masks import folder_masks, gt_masks, procedural_mask
from diag.generate.output import OutputWriter


def test_gt_masks_in_manifest_order(replica: Path) -> None:
    masks = gt_masks(replica)
    positives = [s.id for s in read_manifest(replica, "train") if s.is_positive]
    assert list(masks) == positives


def test_folder_masks_reject_empty(tmp_path: Path) -> None:
    Image.fromarray(np.full((632, 224), 255, np.uint8)).save(tmp_path / "a.png")
    assert list(folder_masks(tmp_path)) == ["a"]
    Image.fromarray(np.zeros((632, 224), np.uint8)).save(tmp_path / "b.png")
    with pytest.raises(DataError, match=r"b\.png: mask has no foreground"):
        folder_masks(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no \\*.png masks"):
        folder_masks(tmp_path / "empty")


def test_procedural_masks_are_deterministic_and_sized_like_ksdd2() -> None:
    masks = [procedural_mask(0, i) for i in range(40)]
    assert np.array_equal(masks[3], procedural_mask(0, 3))
    assert not np.array_equal(masks[3], procedural_mask(1, 3))
    areas = np.array([m.mean() for m in masks])
    assert areas.min() > 0 and 0.003 < np.median(areas) < 0.05


def test_writer_resume_bookkeeping(tmp_path: Path) -> None:
    writer = OutputWriter(tmp_path / "gen")
    image = Image.new("RGB", (224, 632))
    mask = np.zeros((632, 224), bool)
    mask[10:20, 10:20] = True
    writer.write(1, image, mask, {"prompt": "p", "seed": 3})
    writer.write(0, image, mask, {"prompt": "q", "seed": 4})
    assert writer.done() == {0, 1}
    import csv

    rows = list(csv.DictReader(writer.finish().open()))
    assert [(r["index"], r["prompt"]) for r in rows] == [("0", "q"), ("1", "p")]
    assert set(np.unique(np.asarray(Image.open(writer.mask_path(1))))) == {0, 255}
    writer.image_path(1).unlink()  # a crash after the row but before the image: redo index 1
    assert writer.done() == {0}
    assert not list((tmp_path / "gen").rglob(".*"))


def test_a_finished_set_read_again_leaves_its_manifest_untouched(replica: Path, tmp_path: Path) -> None:
    """The book reuses a chapter's page only when no results file changed: finishing a finished set writes nothing."""
    from diag.testing import copied_set

    positives = [s.image_path for s in read_manifest(replica, "test") if s.is_positive][:2]
    out = copied_set(replica, tmp_path / "set", positives, "memseg")
    before = (out / "manifest.csv").stat().st_mtime_ns
    OutputWriter(out).finish()
    assert (out / "manifest.csv").stat().st_mtime_ns == before
    (out / "manifest.csv").write_text("index\n")  # damaged: rewritten from the rows
    OutputWriter(out).finish()
    assert len((out / "manifest.csv").read_text().splitlines()) == 3
