"""Where the results folder keeps each method's generated set, and how a set is checked and fingerprinted.

    RESULTS/generated/<method>/augmented_<N>/imgs/    (the release's naming)
"""

from __future__ import annotations

from pathlib import Path

from diag.files import sha1_of_files
from diag.methods import SET_MAKERS


def generated_dir(generated: Path | str, method: str, n_aug: int) -> Path:
    return Path(generated) / method / f"augmented_{n_aug}"


def method_set(generated: Path | str, method: str, n_aug: int, data: Path | str) -> Path:
    """``method``'s set at ``n_aug``, once checked to be one: made from ``data`` by the method's generator,
    its first ``n_aug`` images unchanged since they were written (``output.check_set``)."""
    from diag.generate.output import check_set

    folder = generated_dir(generated, method, n_aug)
    generator, procedural = SET_MAKERS[method]
    check_set(folder, data, n_aug, generator, procedural)
    return folder


def set_fingerprint(folder: Path | None) -> str:
    """A short hash of a generated set's images: a grid cell or FID row is redone when it changes."""
    if folder is None:
        return "none"
    from diag.data.ksdd2 import list_images

    return "sha1:" + sha1_of_files(list_images(Path(folder) / "imgs"))[:12]
