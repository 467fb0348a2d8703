"""Chapter 9: how many real defects augmentation replaces. The few-shot grid's AP against k, one line per
method with its seeds' spread as a band, and sentences computed from those numbers.

Two readings of the curve, both computed here so that the page states nothing its numbers do not show:

* ``stops_adding``: from which k a method's generated positives add no AP beyond the seeds' spread
  over training on the same k real positives alone;
* ``worth``: how many real positives the classifier without augmentation needs to reach the AP a
  method gets from its generated set with the fewest real positives it can use.
"""

from __future__ import annotations

import pandas as pd

from diag.chapters.report import DIFFERENCES
from diag.chapters.show import banner
from diag.chapters.style import mean_std, number, readable, table
from diag.experiments import METHOD_NAMES, grid_stats, reported_results, table_n_aug

ORDER = list(METHOD_NAMES)  # the book's method order: DIAG first among the generators, "none" last


def curve_stats(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and seed count of each metric per (method, k), sorted by method then k."""
    stats = grid_stats(rows).sort_values(["method", "real_positives"], key=lambda c: c.map(order_key))
    return stats.reset_index(drop=True)


def order_key(value):
    return ORDER.index(value) if value in ORDER else value


def curve_table(stats: pd.DataFrame, tag: str, n_positives: int):
    """One row per k, one column per method: AP as ``mean ± std`` over seeds; a dash where a method has no cell."""
    methods = sorted(set(stats["method"]), key=ORDER.index)
    seeds = sorted({int(n) for n in stats["seeds"]})
    rows = []
    for k in sorted(set(stats["real_positives"])):
        entry = {"real positives k": f"{k} (all)" if k == n_positives else str(k)}
        for method in methods:
            found = stats[(stats["method"] == method) & (stats["real_positives"] == k)]
            entry[METHOD_NAMES[method]] = (
                mean_std(found["ap_mean"].iloc[0], found["ap_std"].iloc[0], "ap") if len(found) else "—"
            )
        rows.append(entry)
    frame = pd.DataFrame(rows)
    frame.columns = [frame.columns[0], *[f"{c} (AP, {tag}, {'/'.join(map(str, seeds))} seeds)" for c in frame.columns[1:]]]
    return table(frame).set_properties(subset=list(frame.columns[1:]), **{"white-space": "nowrap"})


def method_curve(stats: pd.DataFrame, method: str) -> pd.DataFrame:
    """One method's AP mean and std indexed by k."""
    found = stats[stats["method"] == method].set_index("real_positives").sort_index()
    return found[["ap_mean", "ap_std"]]


def stops_adding(stats: pd.DataFrame, method: str) -> tuple[str, int | None]:
    """Where ``method`` stops adding AP over no augmentation at the same k, beyond the seeds' spread
    (the two stds added): ("never added", None), ("still adds", None) at the largest k, or ("from", k)
    where k is the smallest k from which the gain stays within the spread at every larger k."""
    ours, base = method_curve(stats, method), method_curve(stats, "none")
    ks = [k for k in ours.index if k in base.index]
    beyond = [ours.loc[k, "ap_mean"] - base.loc[k, "ap_mean"] > ours.loc[k, "ap_std"] + base.loc[k, "ap_std"] for k in ks]
    if not ks or not any(beyond):
        return "never added", None
    if beyond[-1]:
        return "still adds", None
    last = max(i for i, b in enumerate(beyond) if b)
    return "from", int(ks[last + 1])


def lowers(stats: pd.DataFrame, method: str) -> list[int]:
    """The k at which ``method``'s set lowers AP below no augmentation's by more than the seeds' spread."""
    ours, base = method_curve(stats, method), method_curve(stats, "none")
    return [int(k) for k in ours.index if k in base.index
            and base.loc[k, "ap_mean"] - ours.loc[k, "ap_mean"] > ours.loc[k, "ap_std"] + base.loc[k, "ap_std"]]


def worth(stats: pd.DataFrame, method: str) -> tuple[int, float, float | None]:
    """(k, AP) of ``method`` at the fewest real positives it ran with, and the number of real positives at
    which no augmentation reaches that AP (linear between the measured k; None when it never does)."""
    ours, base = method_curve(stats, method), method_curve(stats, "none")
    k0 = int(ours.index.min())
    target = float(ours.loc[k0, "ap_mean"])
    ks, aps = base.index.to_numpy(dtype=float), base["ap_mean"].to_numpy()
    for i, ap in enumerate(aps):
        if ap >= target:
            if i == 0:
                return k0, target, float(ks[0])
            return k0, target, float(ks[i - 1] + (target - aps[i - 1]) / (ap - aps[i - 1]) * (ks[i] - ks[i - 1]))
    return k0, target, None


def within_spread(stats: pd.DataFrame, a: str, b: str, k: int) -> tuple[float, float] | None:
    """(AP of ``a`` minus AP of ``b`` at ``k``, their two stds added); None where either did not run."""
    ours, theirs = method_curve(stats, a), method_curve(stats, b)
    if k not in ours.index or k not in theirs.index:
        return None
    return (float(ours.loc[k, "ap_mean"] - theirs.loc[k, "ap_mean"]),
            float(ours.loc[k, "ap_std"] + theirs.loc[k, "ap_std"]))


def worth_text(stats: pd.DataFrame, method: str, last: int) -> str:
    """What ``method``'s set is worth in real positives, said only where it differs from no augmentation
    at the same k by more than the seeds' spread."""
    k0, ap0, equal = worth(stats, method)
    start = "with no real positive" if k0 == 0 else f"with {k0} real positives"
    reached = f"{start} its set takes the classifier to AP {number(ap0, 'ap')}"
    same_k = within_spread(stats, method, "none", k0)
    if same_k is not None and abs(same_k[0]) <= same_k[1]:
        return (f"{reached}, within the seeds' spread of no augmentation with the same {k0} "
                f"({same_k[0]:+.3f}, spread {same_k[1]:.3f}): no measurable worth in real positives")
    if equal is None:
        ours, base = method_curve(stats, method), method_curve(stats, "none")
        if ap0 - base.loc[last, "ap_mean"] <= ours.loc[k0, "ap_std"] + base.loc[last, "ap_std"]:
            return f"{reached}, as much as no augmentation reaches with all {last} (within the seeds' spread)"
        return f"{reached}, more than no augmentation reaches with any k measured (up to {last})"
    base = method_curve(stats, "none")
    if equal == base.index[0] and base["ap_mean"].iloc[0] > ap0 and k0 < equal:  # below the first k measured
        return (f"{reached}, which no augmentation reaches with its fewest measured ({equal:.0f}) real positives: "
                f"its set is worth at most about {equal - k0:.0f}")
    if equal <= k0:
        return f"{reached}, which no augmentation reaches with {equal:.0f}: its set is worth no real positive here"
    return (f"{reached}, which no augmentation needs about {equal:.0f} real positives for: its set is worth "
            f"about {equal - k0:.0f} real positives")


def masks_text(stats: pd.DataFrame) -> str | None:
    """DIAG with the few real positives' masks against DIAG with procedural masks, at DIAG's smallest k."""
    if not {"diag", "diag-procedural"} <= set(stats["method"]):
        return None
    k = int(method_curve(stats, "diag").index.min())
    compared = within_spread(stats, "diag", "diag-procedural", k)
    if compared is None:
        return None
    gap, spread = compared
    if abs(gap) <= spread:
        verdict = "the two cannot be told apart"
    elif gap < 0:
        verdict = "with so few shapes, varied procedural masks help more than the real defects' shapes"
    else:
        verdict = "the real defects' shapes help beyond what procedural masks give"
    return (f"With k = {k}, DIAG's masks are {k} shapes repeated; DIAG with procedural masks differs from it by "
            f"{-gap:+.3f} AP at the same k (spread {spread:.3f}): {verdict}.")


def flat_text(stats: pd.DataFrame, tag: str) -> str | None:
    """Where the reference curve is nearly flat (a demo on an easy replica), say so and why."""
    base = method_curve(stats, "none")
    if len(base) < 2:
        return None
    rise = float(base["ap_mean"].iloc[-1] - base["ap_mean"].iloc[0])
    if rise > 0.05:
        return None
    why = (
        " Likely reason: the replica's defects stand out on a plain surface and the demo classifier reads "
        "them from frozen Inception features, so a few real ones already teach it most of what there is; "
        f"KSDD2's small, faint defects leave more for augmentation to add ({DIFFERENCES})."
        if tag == "DEMO" else ""
    )
    return (f"The curve of no augmentation is nearly flat ({rise:+.3f} AP from {int(base.index[0])} to "
            f"{int(base.index[-1])} real positives), so augmentation has little room here.{why}")


def curve_text(stats: pd.DataFrame, tag: str, n_positives: int, left_out: list[str]) -> str:
    """The paragraph under the curve, per method: where it stops adding AP, and what its set is worth."""
    if "none" not in set(stats["method"]):
        return "No augmentation was not run, so the curve has no reference to measure the methods against."
    base = method_curve(stats, "none")
    last = int(base.index[-1])
    parts = [
        f"Without augmentation this run ({tag}) reaches AP {number(base['ap_mean'].iloc[0], 'ap')} with "
        f"{int(base.index[0])} real positives and {number(base['ap_mean'].iloc[-1], 'ap')} with {last}."
    ]
    for method in sorted(set(stats["method"]) - {"none"}, key=ORDER.index):
        name = METHOD_NAMES[method]
        how, k = stops_adding(stats, method)
        if how == "never added":
            gain = f"{name} adds no AP beyond the seeds' spread at any k where both ran"
        elif how == "still adds":
            gain = f"{name} still adds AP beyond the seeds' spread at k = {last}"
        else:
            gain = f"{name} stops adding AP beyond the seeds' spread from k = {k}"
        worse = lowers(stats, method)
        if worse:
            gain += f", and lowers it beyond that spread at k = {', '.join(map(str, worse))}"
        parts.append(f"{gain}; {worth_text(stats, method, last)}.")
    parts += [t for t in (masks_text(stats), flat_text(stats, tag)) if t]
    parts += left_out
    return " ".join(parts)


def paper_points(n_aug: int) -> pd.DataFrame:
    """The paper's zero-shot (k = 0) and full-shot (k = 246, KSDD2's) AP at ``n_aug``, Tables I and II."""
    paper = reported_results()
    return paper[paper["n_aug"] == n_aug][["scenario", "method", "ap"]]


COLOURS = {"diag": "C0", "memseg": "C1", "diag-procedural": "C2", "inout": "C3", "none": "grey"}  # one per method, both panels


def curve_figure(stats: pd.DataFrame, extra: pd.DataFrame, label: str, tag: str, n_positives: int, n_aug: int):
    """Left: AP against k (symlog: the small k where augmentation matters get room), a band of ± one std
    per method; ``extra``: points from other grids (In&Out at k = all in the demo). Right, on its own
    axis: the paper's two ends (Tables I and II at ``n_aug``), which lie far below a demo's curve."""
    import matplotlib.pyplot as plt

    fig, (ax, paper_ax) = plt.subplots(1, 2, figsize=(8.4, 4.6), gridspec_kw={"width_ratios": [3, 1]})
    for method in sorted(set(stats["method"]), key=ORDER.index):
        curve = method_curve(stats, method)
        x = curve.index.to_numpy(dtype=float)
        colour = COLOURS.get(method, "black")
        ax.plot(x, curve["ap_mean"], marker="o", color=colour, ls="--" if method == "none" else "-",
                label=f"{METHOD_NAMES[method]} ({tag})")
        ax.fill_between(x, curve["ap_mean"] - curve["ap_std"], curve["ap_mean"] + curve["ap_std"],
                        color=colour, alpha=0.15, lw=0)
    for r in grid_stats(extra).itertuples(index=False) if len(extra) else ():
        ax.errorbar([r.real_positives], [r.ap_mean], yerr=[r.ap_std], marker="s", capsize=3, ls="none",
                    color=COLOURS.get(r.method, "black"), label=f"{METHOD_NAMES[r.method]} ({tag}, full-shot grid)")
    ax.set_xscale("symlog", linthresh=max(1, min([k for k in stats["real_positives"] if k > 0], default=1)))
    ticks = sorted(set(int(k) for k in stats["real_positives"]) | {n_positives})
    ax.set_xticks(ticks, [f"{k}\n(all)" if k == n_positives else str(k) for k in ticks])
    ax.set_xlabel(f"real positives k (+ {n_aug} generated)")
    ax.set_ylabel("AP")
    ax.set_title(label)
    paper = paper_points(n_aug)
    names = {v: m for m, v in METHOD_NAMES.items()}
    for scenario, x in (("zero-shot", 0), ("full-shot", 1)):
        for r in paper[paper["scenario"] == scenario].itertuples(index=False):
            paper_ax.plot([x], [r.ap], marker="D", mfc="none", ls="none", color=COLOURS.get(names.get(r.method), "black"))
    paper_ax.set_xticks([0, 1], ["0", "246\n(all)"])
    paper_ax.set_xlim(-0.5, 1.5)
    paper_ax.set_title("paper (KSDD2)")
    paper_ax.set_xlabel("k")
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.15, 1, 1))
    return readable(fig)


def show_curve(run) -> pd.DataFrame:
    """Chapter 9's body: the curve, its table, and the paragraph computed from them."""
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display

    from diag.classify.data import count_positives

    rows = run.grid("few-shot")
    banner(run, "few-shot")
    n_positives = count_positives(run.data)
    n_aug = table_n_aug(run.config.grid.n_augs)
    stats = curve_stats(rows)
    left = []
    extra = pd.DataFrame()
    missing = [m for m in ("inout",) if m not in run.config.grid.few_shot_methods]
    if missing:
        full = run.grid("full-shot")
        extra = full[full["method"].isin(missing) & (full["n_aug"] == n_aug)]
        left.append(
            f"Left out of this run's curve: {', '.join(METHOD_NAMES[m] for m in missing)} below k = all "
            f"(grid.few_shot_methods); its point at k = all ({n_positives}) comes from the full-shot grid."
        )
    copied = int(rows["copied_from"].notna().sum()) if "copied_from" in rows else 0
    if copied:
        left.append(
            f"{copied} of the {len(rows)} classifiers at k = 0 and k = all are the zero-shot and full-shot grids' own "
            "rows: they train on exactly the same images, so they were not trained twice."
        )
    left.append(
        "One draw of real positives per k (grid.positives_seed) serves every method and classifier seed, so "
        "the bands show the classifiers' spread, not the draw's."
    )
    curve_figure(stats, extra, run.label, run.numbers, n_positives, n_aug)
    plt.show()
    display(curve_table(stats, run.numbers, n_positives))
    display(Markdown(curve_text(stats, run.numbers, n_positives, left)))
    return rows

