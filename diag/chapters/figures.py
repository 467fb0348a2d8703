"""Chapter 3's figures: Figure 2's grid of examples, and DIAG's fills zoomed in."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diag.chapters.style import readable
from diag.data.ksdd2 import list_images, load_image, load_mask
from diag.fid.realism import defect_box


def example_grid(rows: dict[str, list[np.ndarray]], title: str):
    """One row per source (named on the left), its images across; the title above the first row."""
    import matplotlib.pyplot as plt

    columns = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(
        len(rows), columns, figsize=(1.2 * columns + 1.4, 2.9 * len(rows)), squeeze=False, layout="constrained"
    )
    for r, (name, images) in enumerate(rows.items()):
        for c in range(columns):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c])
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(name)
    fig.suptitle(title)  # constrained layout keeps it clear of the first row (tight_layout let them overlap)
    return readable(fig)


def small_defects(folder: Path | str, n: int, largest_share: float = 0.1) -> list[Path]:
    """The first ``n`` images of a set whose mask is not empty and whose box around it covers at most
    ``largest_share`` of the image: a zoom of a box as large as the image would only shrink it."""
    chosen = []
    for path in list_images(Path(folder) / "imgs"):
        mask = load_mask(Path(folder) / "masks" / path.name)
        if not mask.any():
            continue
        top, bottom, left, right = defect_box(mask)
        if (bottom - top) * (right - left) <= largest_share * mask.size:
            chosen.append(path)
        if len(chosen) == n:
            break
    return chosen


def zoomed_defects(folder: Path | str, n: int = 6, title: str = ""):
    """Images of a generated set with a small defect, each above a zoom of the red box around its mask
    (the mask's outline in yellow)."""
    import matplotlib.pyplot as plt

    images = small_defects(folder, n)
    if not images:
        fig, ax = plt.subplots(figsize=(6, 1))
        ax.axis("off")
        ax.text(0, 0.5, "No image of this set has a defect box under a tenth of the image.", va="center")
        return readable(fig)
    fig, axes = plt.subplots(
        2,
        max(len(images), 1),
        figsize=(1.3 * max(len(images), 1) + 0.8, 6.2),
        squeeze=False,
        gridspec_kw={"height_ratios": [2.2, 1]},
        layout="constrained",
    )
    for c, path in enumerate(images):
        image, mask = load_image(path), load_mask(Path(folder) / "masks" / path.name)
        top, bottom, left, right = defect_box(mask)
        axes[0, c].imshow(image)
        axes[0, c].contour(mask, colors="yellow", linewidths=0.4)
        axes[0, c].add_patch(plt.Rectangle((left, top), right - left, bottom - top, fill=False, color="red", lw=0.8))
        axes[0, c].set_xlim(-0.5, image.shape[1] - 0.5), axes[0, c].set_ylim(image.shape[0] - 0.5, -0.5)
        axes[1, c].imshow(image[top:bottom, left:right], interpolation="nearest")
        axes[1, c].contour(mask[top:bottom, left:right], colors="yellow", linewidths=0.5)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].set_ylabel("image")
    axes[1, 0].set_ylabel("zoom of\nthe red box")
    fig.suptitle(title)
    return readable(fig)
