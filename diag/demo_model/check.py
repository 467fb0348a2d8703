"""Does the demo model follow its prompt? The held-out check behind the model card's table.

DIAG inpaints a described defect into a defect-free image. For the demo model we measure
the two properties the paper's prompts ask for, inside the mask relative to the unmasked
surround: brightness (grey level) for "white marks", and warmth (R - B) for "copper
scratches". Run on replica negatives the model never saw, with the replica's ``gt`` masks.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from diag.data.ksdd2 import load_mask
from diag.generate.diag import DiagConfig, generate_diag
from diag.generate.prompts import load_prompts

PAPER = load_prompts()  # the paper's two prompts and negative prompt (diag/resources/prompts-paper.yaml)
WHITE, COPPER = PAPER.prompts
PAPER_NEGATIVE = PAPER.negative_prompt


def region_change(folder: Path | str) -> pd.DataFrame:
    """Per generated image: brightness and warmth inside the mask minus the surround's."""
    folder = Path(folder)
    rows = []
    for image_path in sorted((folder / "imgs").glob("*.png")):
        image = np.asarray(Image.open(image_path).convert("RGB"), float)
        mask = load_mask(folder / "masks" / image_path.name)
        grey, warmth = image.mean(axis=2), image[..., 0] - image[..., 2]
        rows.append(
            {
                "image": image_path.name,
                "brightness": grey[mask].mean() - grey[~mask].mean(),
                "warmth": warmth[mask].mean() - warmth[~mask].mean(),
            }
        )
    return pd.DataFrame(rows)


def prompt_means(folder: Path | str) -> pd.Series:
    """For a generated set made with both paper prompts: the mean change inside the mask, per prompt."""
    folder = Path(folder)
    rows = region_change(folder)
    rows["index"] = rows["image"].str[:5].astype(int)
    rows = rows.merge(pd.read_csv(folder / "manifest.csv")[["index", "prompt"]], on="index")
    white, copper = rows[rows["prompt"] == WHITE], rows[rows["prompt"] == COPPER]
    return pd.Series(
        {
            "white_bright": white["brightness"].mean(),
            "white_R-B": white["warmth"].mean(),
            "copper_bright": copper["brightness"].mean(),
            "copper_R-B": copper["warmth"].mean(),
        }
    )


def prompt_response(
    data: Path | str,
    out: Path | str,
    config: DiagConfig,
    prompts: tuple[str, ...] = (WHITE, COPPER),
    negative_prompt: str = PAPER_NEGATIVE,
    pipe=None,
) -> pd.DataFrame:
    """Generate ``config.n_aug`` images per prompt into ``out/<k>/`` and measure each one."""
    frames = []
    for k, prompt in enumerate(prompts):
        prompt_file = Path(out) / f"prompt-{k}.yaml"
        prompt_file.parent.mkdir(parents=True, exist_ok=True)
        prompt_file.write_text(json.dumps({"prompts": [prompt], "negative_prompt": negative_prompt}))  # JSON is YAML
        generate_diag(data, Path(out) / str(k), replace(config, prompts=str(prompt_file)), pipe=pipe, progress=False)
        frames.append(region_change(Path(out) / str(k)).assign(prompt=prompt))
    return pd.concat(frames, ignore_index=True)
