"""Where the results folder keeps each method's generated set, and how a set is checked and fingerprinted.

    RESULTS/generated/<method>/augmented_<N>/imgs/               (the release's naming)
    RESULTS/generated/<method>/k<k>-draw<S>/augmented_<N>/imgs/  DIAG's and In&Out's few-shot sets,
                                                                 made from k drawn real positives
"""

from __future__ import annotations

from pathlib import Path

from diag.files import sha1_of_files
from diag.methods import SET_MAKERS

DRAWN = ("diag", "inout")  # the sets made from real positives: DIAG's masks, In&Out's fine-tune


def draw_name(k: int, seed: int) -> str:
    """The folder of one few-shot draw's sets: ``k<k>-draw<seed>``."""
    return f"k{k}-draw{seed}"


def is_drawn(method: str, k: int, n_positives: int) -> bool:
    """Whether ``method``'s few-shot set at ``k`` is made from a draw: DIAG's and In&Out's below k = all
    (at k = all it is the standard set; the other methods' sets use no real positive)."""
    return method in DRAWN and k < n_positives


def few_shot_draw(method: str, k: int, n_positives: int, seed: int) -> str | None:
    """Where ``method``'s few-shot set at ``k`` lives: its draw's own folder (``is_drawn``), else None."""
    return draw_name(k, seed) if is_drawn(method, k, n_positives) else None


def generated_dir(generated: Path | str, method: str, n_aug: int, draw: str | None = None) -> Path:
    base = Path(generated) / method
    return (base / draw if draw else base) / f"augmented_{n_aug}"


def method_set(
    generated: Path | str,
    method: str,
    n_aug: int,
    data: Path | str,
    draw: str | None = None,
    positives: list[str] | None = None,
) -> Path:
    """``method``'s set at ``n_aug``, once checked to be one: made from ``data`` by the method's generator
    (from the real ``positives`` of ``draw``, or from all of them), its first ``n_aug`` images unchanged
    since they were written (``output.check_set``)."""
    from diag.generate.output import check_set

    folder = generated_dir(generated, method, n_aug, draw)
    generator, procedural = SET_MAKERS[method]
    check_set(folder, data, n_aug, generator, procedural, positives if draw else None)
    return folder


def set_fingerprint(folder: Path | None) -> str:
    """A short hash of a generated set's images: a grid cell or FID row is redone when it changes."""
    if folder is None:
        return "none"
    from diag.data.ksdd2 import list_images

    return "sha1:" + sha1_of_files(list_images(Path(folder) / "imgs"))[:12]
