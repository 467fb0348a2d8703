import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diag.cli import main
from diag.data.ksdd2 import load_image, load_mask, read_manifest
from diag.errors import DataError
from diag.data.prepare import prepare


def test_prepare_resizes_and_writes_sorted_manifests(official_ksdd2: Path, tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    with pytest.warns(UserWarning, match=r"ignored 2 file\(s\).*10301 \(copy\)\.png.*10301_GT \(copy\)\.png"):
        report = prepare(official_ksdd2, out)
    assert report.counts == {"train": {"positive": 2, "negative": 3}, "test": {"positive": 2, "negative": 3}}
    rows = list(csv.DictReader((out / "train.csv").open()))
    assert [r["path"] for r in rows] == [f"train/{10000 + i}.png" for i in range(5)]
    for sample in read_manifest(out, "train") + read_manifest(out, "test"):
        assert load_image(sample.image_path).shape == (632, 224, 3)
        mask = np.asarray(Image.open(sample.mask_path))
        assert mask.shape == (632, 224) and set(np.unique(mask)) <= {0, 255}
        assert load_mask(sample.mask_path).any() == sample.is_positive


def test_prepare_cli_prints_counts(official_ksdd2: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "prepare", "--src", str(official_ksdd2), "--out", str(tmp_path / "p")]) == 0
    captured = capsys.readouterr()
    assert "train: 2 positive + 3 negative; test: 2 positive + 3 negative" in captured.out
    assert captured.err.count("warning:") == 1


def assert_nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nowhere: folder not found"):
        prepare(tmp_path / "nowhere", tmp_path / "out")


def test_image_without_mask(official_ksdd2: Path, tmp_path: Path) -> None:
    (official_ksdd2 / "test" / "20003_GT.png").unlink()
    with pytest.raises(DataError, match=r"20003\.png: no mask"):
        prepare(official_ksdd2, tmp_path / "out")
    assert_nothing_written(tmp_path)


def test_unreadable_png(official_ksdd2: Path, tmp_path: Path) -> None:
    (official_ksdd2 / "test" / "20001.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match=r"20001\.png: unreadable image"):
        prepare(official_ksdd2, tmp_path / "out")
    assert_nothing_written(tmp_path)


def test_mask_of_another_size(official_ksdd2: Path, tmp_path: Path) -> None:
    Image.new("L", (100, 200)).save(official_ksdd2 / "train" / "10002_GT.png")
    with pytest.raises(DataError, match=r"10002_GT\.png: mask is 100x200 but its image is 241x597"):
        prepare(official_ksdd2, tmp_path / "out")
    assert_nothing_written(tmp_path)


def test_refuses_to_overwrite(official_ksdd2: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        prepare(official_ksdd2, out)
    assert (out / "keep.txt").read_text() == "mine"


def test_cli_error_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "prepare", "--src", str(tmp_path / "x"), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("diag: error:") and "\n" not in err
