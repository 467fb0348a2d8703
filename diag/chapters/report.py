"""The results chapters' tables, figures and sentences, computed from the grid rows.

Chapters 4 (zero-shot, Table I) and 5 (full-shot, Table II) call ``show_grid``; chapter 6
calls ``fid_table``/``fid_figure``. Every sentence is made here from the numbers, so a page
never states an ordering or a gap that its own results do not show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from diag.chapters.show import banner
from diag.chapters.style import count, mean_std, number, readable, table
from diag.experiments import METHOD_NAMES, METRICS, PROCEDURAL, grid_stats, reported_fid, reported_results

PAPER_FID_NAMES = {"MemSeg": "memseg", "In&Out (DDPM)": "inout", "DIAG": "diag"}


def paper_values(scenario: str) -> pd.DataFrame:
    paper = reported_results()
    return paper[paper["scenario"] == scenario]


DIFFERENCES = "[Differences from the paper](../differences.md)"  # the chapters' link to that page


def results_table(rows: pd.DataFrame, scenario: str, tag: str):
    """One row per method and N_aug: ours as ``mean ± std`` over seeds, the paper's beside; best bold, second
    underlined. The seed count goes in the header, so the table fits the text column."""
    stats = grid_stats(rows)
    paper = paper_values(scenario)
    seeds = sorted({int(n) for n in stats["seeds"]})
    ours = f"{tag}, {'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''}"
    table_rows = []
    for r in stats.itertuples(index=False):
        entry = {"method": METHOD_NAMES[r.method], "N_aug": "—" if r.method == "none" else int(r.n_aug)}
        ref = paper[(paper["method"] == METHOD_NAMES[r.method]) & (paper["n_aug"] == r.n_aug)]
        for m in METRICS:
            name = m.upper() if m == "ap" else m
            entry[f"{name} ({ours})"] = mean_std(getattr(r, m + "_mean"), getattr(r, m + "_std"), m)
            entry[f"{name} (paper)"] = number(ref[m].iloc[0], m) if len(ref) else "—"
        table_rows.append(entry)
    styled = table(pd.DataFrame(table_rows)).apply(rank_marks, axis=0)
    numbers = [c for c in styled.data.columns if c not in ("method", "N_aug")]
    return styled.set_properties(subset=numbers, **{"white-space": "nowrap"})  # "0.784 ± 0.012" on one line


def rank_marks(column: pd.Series) -> list[str]:
    """Bold for the best value of a metric column, underline for the second (as the paper marks them)."""
    if column.name in ("method", "N_aug"):
        return [""] * len(column)
    values = pd.to_numeric(column.astype(str).str.split(" ").str[0], errors="coerce")
    order = values.rank(ascending=False, method="min")
    return ["font-weight: bold" if o == 1 else "text-decoration: underline" if o == 2 else "" for o in order]


def method_means(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean AP over N_aug and seeds per method, with the seeds' spread (mean std over N_aug)."""
    stats = grid_stats(rows[rows["method"] != "none"])
    return (
        stats.groupby("method")
        .agg(ap=("ap_mean", "mean"), spread=("ap_std", "mean"))
        .sort_values("ap", ascending=False)
    )


def comparison_text(rows: pd.DataFrame, scenario: str, tag: str) -> str:
    """A paragraph comparing this run's ordering of the paper's methods with the paper's, computed from the rows."""
    means = method_means(rows)
    ours = means.drop(index=[PROCEDURAL], errors="ignore")
    paper = paper_values(scenario).groupby("method")["ap"].mean().sort_values(ascending=False)
    names = lambda order: " > ".join(METHOD_NAMES.get(m, m) for m in order)  # noqa: E731
    our_order = list(ours.index)
    paper_order = [k for name in paper.index for k, v in METHOD_NAMES.items() if v == name and k in our_order]
    values = ", ".join(f"{METHOD_NAMES[m]} {number(ours.loc[m, 'ap'], 'ap')}" for m in our_order)
    parts = [
        f"Averaged over N_aug and seeds, this run ({tag}) orders the paper's methods by AP as "
        f"{names(our_order)} ({values}); the paper orders them {names(paper_order)}.",
        "The orderings agree." if our_order == paper_order else "The orderings differ.",
    ]
    gaps = []
    for a, b in zip(our_order, our_order[1:]):
        gap = ours.loc[a, "ap"] - ours.loc[b, "ap"]
        noise = ours.loc[a, "spread"] + ours.loc[b, "spread"]
        if gap <= noise:
            gaps.append(f"{METHOD_NAMES[a]} vs {METHOD_NAMES[b]} ({gap:.3f} apart, seeds spread {noise:.3f})")
    if gaps:
        parts.append("Within the seeds' spread, so not a meaningful difference: " + "; ".join(gaps) + ".")
    if PROCEDURAL in means.index and "diag" in means.index:
        gap = means.loc[PROCEDURAL, "ap"] - means.loc["diag", "ap"]
        parts.append(
            f"DIAG with procedural masks, which uses no real positive anywhere, reaches AP "
            f"{means.loc[PROCEDURAL, 'ap']:.3f} ({gap:+.3f} against DIAG with the real positives' masks)."
        )
    saturated = False
    if "none" in set(rows["method"]):
        base = rows.loc[rows["method"] == "none", "ap"].mean()
        best = our_order[0]
        added = ours.loc[best, "ap"] - base
        spread = rows.loc[rows["method"] == "none", "ap"].std(ddof=0) + ours.loc[best, "spread"]
        saturated = added <= max(spread, 0.01)
        parts.append(f"Without augmentation the classifier reaches AP {base:.3f}; the best method adds {added:+.3f}.")
    if our_order != paper_order and tag == "DEMO":
        reasons = (
            "the demo replaces SDXL with a 4 M-parameter inpainting model, KSDD2 with a procedural replica "
            "whose bright, colourful defects MemSeg's pasted noise also resembles, and the ResNet-50 with a "
            "small head on frozen Inception feature maps"
        )
        if saturated:
            reasons += (
                "; and the real positives alone already take this classifier close to what it reaches on the "
                "replica, so generated positives have little left to add"
            )
        parts.append(f"Likely reasons: {reasons} (see {DIFFERENCES}).")
    if tag == "DEMO" and our_order and our_order[0] == "diag":
        parts.append(
            "DIAG's lead here is not independent of the setup: the demo inpainting model was pretrained on surfaces "
            "and defects drawn by the replica's own renderers (on other random streams), so it knows the replica's "
            f"kind of defect more closely than SDXL may know KSDD2's (see {DIFFERENCES})."
        )
    return " ".join(parts)


def ap_figure(rows: pd.DataFrame, scenario: str, label: str, tag: str):
    """AP against N_aug per method (mean ± std over seeds), the paper's dashed, no augmentation as a line.

    Methods sit side by side around each N_aug (a dodge of a few N_aug units), so points that would
    coincide all show; the legend goes under the axes, where it covers no line."""
    import matplotlib.pyplot as plt

    paper = paper_values(scenario)
    methods = sorted(set(rows["method"]) - {"none"}, key=list(METHOD_NAMES).index)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for offset, method in zip(np.linspace(-3, 3, len(methods)) if len(methods) > 1 else [0], methods):
        stats = rows[rows["method"] == method].groupby("n_aug")["ap"].agg(["mean", "std"]).fillna(0)
        line = ax.errorbar(
            stats.index + offset, stats["mean"], yerr=stats["std"], marker="o", capsize=3, ls="-",
            label=f"{METHOD_NAMES[method]} ({tag})",
        )
        ref = paper[paper["method"] == METHOD_NAMES[method]]
        if len(ref):  # the paper has no row for DIAG with procedural masks: no legend entry without a line
            ax.plot(ref["n_aug"], ref["ap"], "--", color=line[0].get_color(), alpha=0.6,
                    label=f"{METHOD_NAMES[method]} (paper)")
    if "none" in set(rows["method"]):
        ax.axhline(
            rows.loc[rows["method"] == "none", "ap"].mean(), color="grey", lw=1, label=f"no augmentation ({tag})"
        )
    ax.set_xlabel("N_aug (methods drawn side by side)")
    ax.set_ylabel("AP")
    ax.set_title(f"{scenario}: AP vs N_aug — {label}")
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: ("no augmentation" in labels[i], i % len(labels)))
    by_method = sorted(order, key=lambda i: labels[i].split(" (")[0])  # each method's two entries together
    ax.legend([handles[i] for i in by_method], [labels[i] for i in by_method], loc="upper center",
              bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.tight_layout()
    return readable(fig)


def threshold_moves(rows: pd.DataFrame) -> pd.DataFrame:
    """Precision/recall/accuracy at the authors' test-set threshold vs one chosen on validation data."""
    cols = [c for c in ("precision", "recall", "accuracy") if f"val_{c}" in rows]
    if not cols:
        return pd.DataFrame()
    moves = rows.groupby("method")[[*cols, *[f"val_{c}" for c in cols]]].mean()
    shown = pd.DataFrame({"method": [METHOD_NAMES[m] for m in moves.index]})
    for c in cols:
        shown[f"{c} (test threshold)"] = [number(v, c) for v in moves[c]]
        shown[f"{c} (validation threshold)"] = [number(v, c) for v in moves[f"val_{c}"]]
    return shown


def show_grid(run, scenario: str) -> pd.DataFrame:
    """Chapter 4/5's body: the table, the paragraph, the threshold comparison and the plot."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display

    rows = run.grid(scenario)
    banner(run, scenario)
    display(results_table(rows, scenario, run.numbers))
    display(Markdown(comparison_text(rows, scenario, run.numbers)))
    moves = threshold_moves(rows)
    if not moves.empty:
        display(
            Markdown(
                "How precision and recall move when the threshold is chosen on a validation split of the "
                "training data instead of on the test set (mean over seeds):"
            )
        )
        display(table(moves))
    ap_figure(rows, scenario, run.label, run.numbers)
    plt.show()
    return rows


def fid_table(fid: pd.DataFrame, tag: str):
    """Table III: ours beside the paper's, no index, no fingerprints."""
    paper = reported_fid()
    paper["method"] = paper["method"].map(PAPER_FID_NAMES)
    merged = fid.merge(paper[["method", "fid_64", "fid_192"]], on="method", how="left", suffixes=("", "_paper"))
    out = pd.DataFrame(
        {
            "method": merged["method"].map(METHOD_NAMES),
            "generated images": merged["n_generated"].map(count),
            "real positives": merged["n_real"].map(count),
        }
    )
    for dim in (64, 192, 2048):
        if f"fid_{dim}" in merged:
            out[f"FID-{dim} ({tag})"] = merged[f"fid_{dim}"].map(lambda v: number(v, "fid"))
        if f"fid_{dim}_paper" in merged:
            out[f"FID-{dim} (paper)"] = merged[f"fid_{dim}_paper"].map(lambda v: number(v, "fid"))
    return table(out)


def fid_figure(fid: pd.DataFrame, label: str, tag: str):
    """FID on a log scale, so that every method shows beside the paper's values."""
    import matplotlib.pyplot as plt

    paper = reported_fid()
    paper["method"] = paper["method"].map(PAPER_FID_NAMES)
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.4))
    x = np.arange(len(fid))
    for ax, dim in zip(axes, ("fid_64", "fid_192")):
        ref = paper.set_index("method").reindex(fid["method"])[dim]
        ax.bar(x - 0.2, fid[dim], 0.4, label=tag)
        ax.bar(x + 0.2, ref.to_numpy(), 0.4, label="paper")
        ax.set_yscale("log")
        ax.set_xticks(x, fid["method"].map(METHOD_NAMES))
        ax.set_title(dim.replace("fid_", "FID-"))
        ax.legend()
    fig.suptitle(f"{label}\n(log scale; lower is closer to the real positives)")
    fig.tight_layout()
    return readable(fig)


def rank_deficient(fid: pd.DataFrame) -> list[int]:
    """The feature sizes at which this table's FID rests on a rank-deficient covariance: a covariance
    estimated from N images has rank at most N - 1, and either set (real or generated) may be the smaller."""
    n = int(min(fid["n_generated"].min(), fid["n_real"].min()))
    return [d for d in (64, 192, 2048) if f"fid_{d}" in fid and n <= d]


def fid_text(fid: pd.DataFrame, tag: str) -> str:
    """The FID ordering against the paper's, and what N allows."""
    ours = fid.set_index("method")["fid_64"].sort_values()
    paper = reported_fid().assign(method=lambda f: f["method"].map(PAPER_FID_NAMES)).set_index("method")["fid_64"]
    paper = paper.sort_values()
    order = lambda s: " < ".join(METHOD_NAMES[m] for m in s.index)  # noqa: E731
    agree = list(ours.index) == list(paper.index)
    n_gen, n_real = int(fid["n_generated"].min()), int(fid["n_real"].min())
    deficient = rank_deficient(fid)
    text = (
        f"FID-64 orders the sets {order(ours)} in this run ({tag}) and {order(paper)} in the paper: the orderings "
        f"{'agree' if agree else 'differ'}. "
        f"Each set has {n_gen} generated images and is compared with {n_real} real positives. A covariance "
        "estimated from N images has rank at most N - 1, so with fewer images than features some directions "
        "have no variance estimate at all and FID there is dominated by noise: "
    )
    if deficient:
        dims = " and ".join(f"FID-{d}" for d in deficient)
        text += f"here {dims} {'rests' if len(deficient) == 1 else 'rest'} on a rank-deficient covariance "
        text += f"({min(n_gen, n_real)} images, fewer than {' and '.join(map(str, deficient))} features). "
    else:
        text += "here every FID shown has more images than features. "
    text += (
        "FID-2048 would need more than 2048 images per set, so it is "
        f"{'shown' if 'fid_2048' in fid else 'not computed'} here."
    )
    return text


KID_DIMS = (64, 192)


def kid_view(fid: pd.DataFrame, tag: str):
    """KID x 10^3 per method: on the whole sets, and its mean +- std over random subsets."""
    dims = [d for d in KID_DIMS if f"kid_{d}" in fid]
    out = pd.DataFrame({"method": fid["method"].map(METHOD_NAMES)})
    for d in dims:
        out[f"KID-{d} x10³ ({tag})"] = (fid[f"kid_{d}"] * 1e3).map(lambda v: number(v, "kid"))
        out[f"KID-{d} x10³, subsets"] = [
            mean_std(m * 1e3, s * 1e3, "kid") for m, s in zip(fid[f"kid_{d}_mean"], fid[f"kid_{d}_std"])
        ]
    return table(out)


def kid_text(fid: pd.DataFrame) -> str:
    """What KID says beside FID: its ordering, and which methods its subsets' spread cannot tell apart."""
    if "kid_64" not in fid:
        return "KID is not in this results folder (made before diag computed it); computing the book again adds it."
    size, count_ = int(fid["kid_subset_size"].iloc[0]), int(fid["kid_subsets"].iloc[0])
    frame = fid.set_index("method")
    order = frame["kid_64"].sort_values()
    text = (
        f"KID-64 orders the sets {' < '.join(METHOD_NAMES[m] for m in order.index)}. Unlike FID it is unbiased "
        f"at any number of images; its spread comes from {count_} random subsets of {size} images per set. "
    )
    close = [
        (a, b)
        for i, a in enumerate(order.index)
        for b in order.index[i + 1 :]
        if abs(frame.loc[a, "kid_64_mean"] - frame.loc[b, "kid_64_mean"])
        < frame.loc[a, "kid_64_std"] + frame.loc[b, "kid_64_std"]
    ]
    if close:
        pairs = "; ".join(f"{METHOD_NAMES[a]} and {METHOD_NAMES[b]}" for a, b in close)
        text += f"These cannot be told apart by it (their means differ by less than their spreads add up to): {pairs}."
    else:
        text += "Every pair of methods differs by more than their spreads add up to."
    return text


def realism_view(frame: pd.DataFrame, tag: str):
    """The probe's AUROCs per method (0.5: real and generated cannot be told apart)."""
    out = pd.DataFrame(
        {
            "method": frame["method"].map(METHOD_NAMES),
            f"defect crops AUROC ({tag})": frame["auroc_crops"].map(lambda v: number(v, "auroc")),
            f"whole images AUROC ({tag})": frame["auroc_images"].map(lambda v: number(v, "auroc")),
            "crops": frame["n_crops"].map(count),
            "images": frame["n_generated"].map(count),
            "real positives": frame["n_real"].map(count),
        }
    )
    return table(out)


def realism_text(table: pd.DataFrame) -> str:
    """Which method's defects pass best for real ones, by the probe, in words."""
    crops = table.dropna(subset=["auroc_crops"]).sort_values("auroc_crops")
    if crops.empty:
        return "Too few images for the probe's cross-validation."
    listed = ", ".join(f"{METHOD_NAMES[r.method]} {number(r.auroc_crops, 'auroc')}" for r in crops.itertuples())
    best = crops.iloc[0]
    text = (
        f"A logistic regression on Inception features tells the boxes around generated defects from those around "
        f"real ones with cross-validated AUROC {listed} (0.5: indistinguishable, 1.0: always told apart). "
    )
    if best.auroc_crops > 0.9:
        text += (
            "Every method's defects are told from real ones almost always: by this measure none passes for real, "
            "whatever FID says about the whole images. "
        )
    else:
        text += f"{METHOD_NAMES[best.method]}'s defects are the hardest to tell from real ones. "
    missing = table[table["auroc_crops"].isna()]["method"].map(METHOD_NAMES).tolist()
    if missing:
        text += f"{', '.join(missing)} has no masks, so only its whole images are probed."
    return text


HEADLINE_N_AUG = 100  # the paper's own reference N (its FID table's, too)


def headline(n_aug: int = HEADLINE_N_AUG) -> str:
    """The intro's claim, computed from Tables I and II as published, at one N_aug that it names."""
    paper = reported_results()
    at = paper[paper["n_aug"] == n_aug]

    def ranked(scenario: str) -> list[tuple[str, float]]:
        rows = at[at["scenario"] == scenario].sort_values("ap", ascending=False)
        return list(zip(rows["method"], rows["ap"]))

    def claim(scenario: str) -> str:
        (first, best), *others = ranked(scenario)
        rest = " and ".join(f"{number(ap, 'ap')} ({method})" for method, ap in others)
        return f"AP {number(best, 'ap')} ({first}) against {rest}"

    return (
        f"In the paper, a ResNet-50 trained on DIAG's images finds real KSDD2 defects better than one trained on "
        f"In&Out's (a fine-tuned Stable Diffusion) or MemSeg's: with {n_aug} generated images, "
        f"{claim('zero-shot')} with no real positive (Table I), and {claim('full-shot')} with all of them "
        "(Table II)."
    )
