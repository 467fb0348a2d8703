"""The prompt lab: the paper's human in the loop, as a small API plus ipywidgets.

Pick a mask (a training positive's, or any drawn mask), write a prompt and a negative
prompt, generate candidates on random training negatives, keep the good ones. Kept
candidates go into a curated set in the generators' layout (``imgs/``, ``masks/``,
``meta/``, ``manifest.csv``); the kept masks and prompts also land where
``diag generate diag --masks CURATED/masks --prompts CURATED/prompts.yaml`` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from diag.data.ksdd2 import load_mask, read_manifest, split_by_label
from diag.data.prepare import HEIGHT, WIDTH
from diag.generate.diag import DiagConfig, canvas_size, inpaint_batch, load_pipeline
from diag.generate.masks import gt_masks
from diag.generate.output import OutputWriter
from diag.generate.plan import noise_seed


@dataclass
class Candidate:
    image: np.ndarray  # (632, 224, 3) uint8
    mask: np.ndarray  # (632, 224) bool
    negative: str
    mask_name: str
    prompt: str
    negative_prompt: str
    seed: int


class PromptLab:
    def __init__(self, data: Path | str, curated: Path | str, *, model: str, guidance: float, canvas: str = "crop",
                 pipe=None) -> None:
        self.data, self.curated = Path(data), Path(curated)
        self.config = DiagConfig(model=model, guidance=guidance, canvas=canvas, device="cpu")
        self._pipe = pipe
        self.negatives, _ = split_by_label(read_manifest(self.data, "train"))
        self.masks = gt_masks(self.data)

    @property
    def pipe(self):
        if self._pipe is None:
            self._pipe = load_pipeline(self.config.model, torch.device("cpu"))
            self._pipe.set_progress_bar_config(disable=True)
        return self._pipe

    def mask_names(self) -> list[str]:
        return list(self.masks)

    def candidates(self, mask_name: str, prompt: str, negative_prompt: str, n: int = 4, seed: int = 0) -> list[Candidate]:
        """``n`` inpaintings of ``prompt`` into random negatives, inside the chosen mask."""
        rng = np.random.default_rng(seed)
        picks = [self.negatives[i] for i in rng.choice(len(self.negatives), size=n)]
        mask = load_mask(self.masks[mask_name])
        canvas = canvas_size(self.pipe, self.config.canvas)
        images = [Image.open(s.image_path).convert("RGB") for s in picks]
        mask_image = Image.fromarray(mask.astype(np.uint8) * 255)
        seeds = [noise_seed(seed, i) for i in range(n)]
        results = inpaint_batch(self.pipe, images, [mask_image] * n, [prompt] * n, seeds, self.config, negative_prompt, canvas)
        return [Candidate(np.asarray(r.resize((WIDTH, HEIGHT))), mask, s.id, mask_name, prompt, negative_prompt, sd)
                for r, s, sd in zip(results, picks, seeds)]

    def keep(self, candidate: Candidate) -> Path:
        """Add a candidate to the curated set; returns the kept image's path."""
        writer = OutputWriter(self.curated)
        index = max(writer.done(), default=-1) + 1
        row = {"negative": candidate.negative, "mask": candidate.mask_name, "prompt": candidate.prompt,
               "negative_prompt": candidate.negative_prompt, "noise_seed": candidate.seed, "model": self.config.model}
        writer.write(index, Image.fromarray(candidate.image), candidate.mask, row)
        writer.finish()
        Image.fromarray(candidate.mask.astype(np.uint8) * 255).save(self.curated / "masks" / f"{index:05d}.png")
        prompts_file = self.curated / "prompts.yaml"
        prompts = yaml.safe_load(prompts_file.read_text()) if prompts_file.is_file() else {"prompts": []}
        if candidate.prompt not in prompts["prompts"]:
            prompts["prompts"].append(candidate.prompt)
        prompts["negative_prompt"] = candidate.negative_prompt
        prompts_file.write_text(yaml.safe_dump(prompts, sort_keys=False))
        return writer.image_path(index)

    def widget(self):
        """The interactive lab (ipywidgets): mask, prompts, Generate, then Keep per candidate."""
        import ipywidgets as w
        import matplotlib.pyplot as plt

        mask = w.Dropdown(options=self.mask_names(), description="mask")
        prompt = w.Text(value="white marks on the wall", description="prompt")
        negative = w.Text(value="smooth, plain, black, dark, shadow", description="negative")
        generate, output = w.Button(description="Generate"), w.Output()
        state: dict = {}

        def on_generate(_):
            state["candidates"] = self.candidates(mask.value, prompt.value, negative.value, n=4, seed=len(state))
            output.clear_output()
            with output:
                fig, axes = plt.subplots(1, 4, figsize=(8, 4))
                for ax, c in zip(axes, state["candidates"]):
                    ax.imshow(c.image); ax.axis("off")
                plt.show()
                keeps = [w.Button(description=f"Keep {i + 1}") for i in range(4)]
                for i, button in enumerate(keeps):
                    button.on_click(lambda _b, i=i: print("kept:", self.keep(state["candidates"][i])))
                display(w.HBox(keeps))  # noqa: F821 - IPython's display

        generate.on_click(on_generate)
        return w.VBox([mask, prompt, negative, generate, output])
