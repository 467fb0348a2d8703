from pathlib import Path

import pytest

from diag.data.ksdd2 import read_manifest, read_official_split
from diag.errors import DataError


def test_official_reader_labels_from_masks(official_ksdd2: Path) -> None:
    samples = read_official_split(official_ksdd2, "train")
    assert [s.id for s in samples] == ["10000", "10001", "10002", "10003", "10004"]
    assert [s.label for s in samples] == ["negative", "positive", "negative", "positive", "negative"]
    assert all(s.mask_path.name == f"{s.id}_GT.png" for s in samples)


def test_reader_ignores_copy_pair(official_ksdd2: Path) -> None:
    assert "10301 (copy)" not in {s.id for s in read_official_split(official_ksdd2, "train")}


def test_reader_rejects_unknown_split(official_ksdd2: Path) -> None:
    with pytest.raises(ValueError, match="split: must be one of"):
        read_official_split(official_ksdd2, "val")


def test_reader_names_image_without_mask(official_ksdd2: Path) -> None:
    (official_ksdd2 / "test" / "20002_GT.png").unlink()
    with pytest.raises(DataError, match=r"20002\.png: no mask 20002_GT\.png"):
        read_official_split(official_ksdd2, "test")


def test_manifest_rejects_bad_label(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("path,label\ntrain/10000.png,maybe\n")
    with pytest.raises(DataError, match=r"train.csv:2: label must be one of"):
        read_manifest(tmp_path, "train")


def test_manifest_missing_names_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path, "train")
