"""The book's figures and tables: every label readable in the text column, one number format per
quantity, and the sentences that state what the tables hold."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd

from diag.chapters import report
from diag.chapters.style import MIN_LABEL_PX, number, readable, smallest_label_px
from diag.testing import copied_set

matplotlib.use("Agg")


def grid_rows() -> pd.DataFrame:
    rows = []
    for method in ("memseg", "inout", "diag", "diag-procedural", "none"):
        for seed in (0, 1, 2):
            rows.append({"scenario": "full-shot", "method": method, "n_aug": 0 if method == "none" else 100,
                         "seed": seed, "ap": 0.9 + 0.001 * seed, "precision": 1.0, "recall": 0.9,
                         "val_precision": 0.99, "val_recall": 0.9})
    return pd.DataFrame(rows)


def fid_rows() -> pd.DataFrame:
    return pd.DataFrame({"method": ["memseg", "inout", "diag"], "n_real": [49] * 3, "n_generated": [100] * 3,
                         "fid_64": [0.4061, 2.16, 0.0201], "fid_192": [2.16, 5.79, 0.086]})


def test_readable_raises_small_labels() -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(14, 3))
    ax.set_title("tiny", fontsize=5)
    assert smallest_label_px(fig) < MIN_LABEL_PX
    assert smallest_label_px(readable(fig)) >= MIN_LABEL_PX - 1e-6
    plt.close(fig)


def test_every_figure_helper_is_readable(replica: Path, tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from diag.chapters import data, explain, figures
    from diag.data.ksdd2 import load_image, read_manifest
    from diag.data.statistics import defect_statistics

    positives = [s for s in read_manifest(replica, "train") if s.is_positive]
    folder = copied_set(replica, tmp_path / "set", [s.image_path for s in positives], "diag",
                        mask_sources=[s.mask_path for s in positives])
    image = load_image(positives[0].image_path)
    drawn = {
        "ap": report.ap_figure(grid_rows(), "full-shot", "DEMO numbers (offline replica, small models)", "DEMO"),
        "fid": report.fid_figure(fid_rows(), "DEMO numbers (offline replica, small models)", "DEMO"),
        "defects": data.defect_figure(defect_statistics(replica), "DEMO numbers"),
        "figure 2": figures.example_grid({"negatives": [image] * 6, "DIAG": [image] * 6}, "Figure 2 — DEMO numbers"),
        "zoom": figures.zoomed_defects(folder, n=6, title="DIAG fills, zoomed"),
        "row": explain._row([image[:64, :64]] * 6, [f"strength 0.{i}\nchange {i}" for i in range(6)]),
    }
    assert len(drawn["zoom"].axes) >= 2  # the replica's positives have small defects to zoom into
    for name, fig in drawn.items():
        assert smallest_label_px(fig) >= MIN_LABEL_PX - 1e-6, name
        plt.close(fig)


def test_the_ap_figure_shows_every_method_and_no_empty_legend_entry() -> None:
    import matplotlib.pyplot as plt

    fig = report.ap_figure(grid_rows(), "full-shot", "DEMO", "DEMO")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "DIAG, procedural masks (paper)" not in labels  # the paper has no such line
    xs = sorted(float(line.get_xdata()[0]) for line in ax.get_lines() if line.get_marker() == "o")
    assert len(xs) == 4 and len(set(xs)) == 4  # four methods at N_aug 100, none hidden behind another
    legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    assert legend.y1 <= ax.get_window_extent(fig.canvas.get_renderer()).y0  # under the axes, covering no line
    plt.close(fig)


def test_one_format_per_quantity() -> None:
    moves = report.threshold_moves(grid_rows())
    assert set(moves["precision (test threshold)"]) == {"1.000"} and set(moves["precision (validation threshold)"]) == {"0.990"}
    fid = report.fid_table(fid_rows(), "DEMO").data
    assert fid["FID-64 (DEMO)"].tolist() == ["0.406", "2.160", "0.020"] and fid["real positives"].tolist() == ["49"] * 3
    assert number(float("nan"), "ap") == "—"


def test_the_fid_text_names_every_rank_deficient_size() -> None:
    text = report.fid_text(fid_rows(), "DEMO")
    assert "FID-64 and FID-192 rest on a rank-deficient covariance (49 images" in text
    many = fid_rows().assign(n_real=500, n_generated=100)
    assert "here FID-64 rests" not in report.fid_text(many, "DEMO") and "FID-192 rests" in report.fid_text(many, "DEMO")


def test_the_results_table_fits_its_columns() -> None:
    styled = report.results_table(grid_rows(), "full-shot", "DEMO")
    assert "seeds" not in styled.data.columns and "AP (DEMO, 3 seeds)" in styled.data.columns
    assert styled.data.loc[0, "AP (DEMO, 3 seeds)"] == "0.901 ± 0.001"


def test_published_notebooks_carry_no_machine_path(tmp_path: Path) -> None:
    import json

    from diag.book import ROOT, publishable

    source = ROOT / "notebooks" / "04-zero-shot.ipynb"
    executed = json.loads(source.read_text())
    injected = {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "outputs": [],
                "execution_count": 1, "source": f'profile = "demo"\nresults_dir = "{tmp_path}/results/demo"\n'
                                                 f'data_dir = None\noverrides = ["grid.seeds=0"]'}
    executed["cells"].insert(2, injected)
    executed["metadata"]["widgets"] = {"state": {}}
    path = tmp_path / "04.ipynb"
    path.write_text(json.dumps(executed))
    publishable(path, source)
    text = path.read_text()
    assert str(tmp_path) not in text and "widgets" not in json.loads(text)["metadata"]
    cell = json.loads(text)["cells"][2]
    assert 'results_dir = "../results/demo"' in cell["source"] and 'overrides = ["grid.seeds=0"]' in cell["source"]
    assert "remove-cell" in cell["metadata"]["tags"]


def test_differences_states_the_corpus_share_the_pretraining_uses() -> None:
    import re

    from diag.book import ROOT
    from diag.demo_model.pretrain import PretrainConfig

    text = (ROOT / "book" / "differences.md").read_text()
    shares = {int(s) for s in re.findall(r"(\d+) % of (?:it|which) is the replica's (?:own )?kind", text)}
    assert shares == {round(100 * PretrainConfig().speckled_share)}
