"""Chapter 1's defect statistics: the histograms beside KSDD2's medians, and their summary table."""

from __future__ import annotations

import pandas as pd

from diag.chapters.style import count, number, readable, table

# KSDD2's medians as ksdd2-look.md gives them (mask area, share of faint pixels); None: no single value
KSDD2_MEDIANS = {"mask area %": 1.6, "median grey inside": None, "% mask pixels > 2 sigma": 43.0}
QUANTITY = {"mask area %": "share", "median grey inside": "grey", "% mask pixels > 2 sigma": "share"}


def defect_figure(stats: pd.DataFrame, label: str):
    """One histogram per measure; KSDD2's median dashed where it has one."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(KSDD2_MEDIANS), figsize=(9, 3.2))
    for ax, (column, ksdd2) in zip(axes, KSDD2_MEDIANS.items()):
        ax.hist(stats[column], bins=20)
        ax.set_xlabel(column)
        if ksdd2 is not None:
            ax.axvline(ksdd2, color="k", linestyle="--", label="KSDD2 median")
            ax.legend()
    axes[0].set_ylabel("positives")
    fig.suptitle(label)
    fig.tight_layout()
    return readable(fig)


def defect_summary(stats: pd.DataFrame):
    """Median and 10th / 90th percentiles of each measure, over the positives counted in the first column."""
    rows = []
    for column, quantity in QUANTITY.items():
        values = stats[column]
        rows.append(
            {
                "measure": column,
                "positives": count(len(values)),
                "10th percentile": number(values.quantile(0.1), quantity),
                "median": number(values.median(), quantity),
                "90th percentile": number(values.quantile(0.9), quantity),
            }
        )
    return table(pd.DataFrame(rows))
