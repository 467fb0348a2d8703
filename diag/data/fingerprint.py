"""A prepared data folder's fingerprint: what every generated set, grid row and FID row records.

It hashes ``train.csv``, ``test.csv`` and the bytes of every image and mask they list, so two
folders with the same content share a fingerprint wherever they lie, and a set or row made
on other data (a replica instead of KSDD2, another replica seed) is told apart and refused.
"""

from __future__ import annotations

import functools
from pathlib import Path

from diag.data.ksdd2 import SPLITS, read_manifest
from diag.files import sha1_of_files


def data_fingerprint(root: Path | str) -> str:
    """``sha1:`` + 16 hex digits over the manifests and every listed image and mask."""
    root = Path(root).resolve()
    stamps = tuple((root / f"{split}.csv").stat().st_mtime_ns for split in SPLITS if (root / f"{split}.csv").is_file())
    return _fingerprint(root, stamps)


@functools.lru_cache(maxsize=16)
def _fingerprint(root: Path, _stamps: tuple) -> str:
    files = [root / f"{split}.csv" for split in SPLITS]
    for split in SPLITS:
        for sample in read_manifest(root, split):
            files += [sample.image_path, sample.mask_path]
    return "sha1:" + sha1_of_files(files)[:16]


def is_replica(root: Path | str) -> bool:
    """A folder made by ``diag data synth`` (it writes ``replica.json``), not real KSDD2."""
    return (Path(root) / "replica.json").is_file()
