"""Chapter 3's figures: Figure 2's grid of examples, and DIAG's fills zoomed in."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from diag.data.ksdd2 import list_images, load_image, load_mask
from diag.fid.realism import defect_box


def example_grid(rows: dict[str, list[np.ndarray]], title: str):
    """One row per source (named on the left), its images across."""
    import matplotlib.pyplot as plt

    columns = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.5 * columns + 1.2, 3.2 * len(rows)), squeeze=False)
    for r, (name, images) in enumerate(rows.items()):
        for c in range(columns):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c])
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def zoomed_defects(folder: Path | str, n: int = 6, title: str = ""):
    """The first ``n`` images of a generated set, each with a zoom of the box around its mask."""
    import matplotlib.pyplot as plt

    images = list_images(Path(folder) / "imgs")[:n]
    fig, axes = plt.subplots(
        2, len(images), figsize=(1.7 * len(images), 6.5), squeeze=False, gridspec_kw={"height_ratios": [2.2, 1]}
    )
    for c, path in enumerate(images):
        image, mask = load_image(path), load_mask(Path(folder) / "masks" / path.name)
        axes[0, c].imshow(image)
        if mask.any():
            axes[0, c].contour(mask, colors="yellow", linewidths=0.4)
            top, bottom, left, right = defect_box(mask)
            axes[0, c].add_patch(
                plt.Rectangle((left, top), right - left, bottom - top, fill=False, color="red", lw=0.8)
            )
            axes[1, c].imshow(image[top:bottom, left:right], interpolation="nearest")
            axes[1, c].contour(mask[top:bottom, left:right], colors="yellow", linewidths=0.5)
        for ax in axes[:, c]:
            ax.set_xticks([]), ax.set_yticks([])
    axes[0, 0].set_ylabel("image", fontsize=9)
    axes[1, 0].set_ylabel("zoom (red box)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
