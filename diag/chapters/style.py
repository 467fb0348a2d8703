"""How the book's tables and figures look, written once: one number format per quantity, and figures
whose every label is readable in the book's text column.

A figure is drawn at some width in inches and shown at ``min(its pixel width, COLUMN_PX)``; a
label of ``s`` points then shows ``s * dpi / 72 * shrink`` pixels tall. ``readable`` raises every
text of a figure to ``MIN_LABEL_PX`` as shown, so no helper can ship 5-pixel labels again.
"""

from __future__ import annotations

import math

import pandas as pd

COLUMN_PX = 720  # the text column of the book's pages at a 1280-px window (sphinx-book-theme)
MIN_LABEL_PX = 10
DPI = 110  # what Run.figure saves at and what the chapters' inline figures use

DECIMALS = {"ap": 3, "precision": 3, "recall": 3, "accuracy": 3, "auroc": 3, "fid": 3, "kid": 2, "share": 1, "grey": 0}
"""Decimals per quantity: AP and the like as the paper prints them (0.801), FID likewise (0.096), KID in
thousandths (KID x 10^3, as SeaS and AnomalyDiffusion print it) with two decimals."""


def number(value: float | None, quantity: str) -> str:
    """``value`` as the book prints ``quantity`` everywhere (a dash for a missing value)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.{DECIMALS[quantity]}f}"


def mean_std(mean: float, std: float, quantity: str) -> str:
    return f"{number(mean, quantity)} ± {number(std, quantity)}"


def count(value: float) -> str:
    return f"{int(round(value))}"


def table(frame: pd.DataFrame):
    """A table as the book shows it: no index, cells padded by the book's stylesheet (book/_static/diag.css)."""
    return frame.style.hide(axis="index")


def shown_px(fig, fontsize_pt: float, column_px: int = COLUMN_PX) -> float:
    """How tall a ``fontsize_pt`` label of ``fig`` shows on a page (saved at DPI, shrunk to the column)."""
    width_px = fig.get_figwidth() * DPI
    return fontsize_pt * DPI / 72 * min(1.0, column_px / width_px)


def readable(fig, min_px: float = MIN_LABEL_PX):
    """Raise every text of ``fig`` (titles, labels, ticks, legends) to at least ``min_px`` as shown; re-lay it out."""
    from matplotlib.text import Text

    smallest_pt = min_px / shown_px(fig, 1.0)
    for ax in fig.axes:  # tick labels are made anew at each draw: set their size on the axis, not the text
        for axis in (ax.xaxis, ax.yaxis):
            ticks = axis.get_ticklabels(which="both")
            if ticks and ticks[0].get_fontsize() < smallest_pt:
                axis.set_tick_params(which="both", labelsize=smallest_pt)
    for text in fig.findobj(Text):
        if text.get_text() and text.get_fontsize() < smallest_pt:
            text.set_fontsize(smallest_pt)
    fig.set_dpi(DPI)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    return fig


def smallest_label_px(fig) -> float:
    """The smallest text of ``fig`` as shown on a page (what the tests check)."""
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text()]
    return min(shown_px(fig, s) for s in sizes) if sizes else math.inf
