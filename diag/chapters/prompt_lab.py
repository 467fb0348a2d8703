"""The prompt lab: the paper's human in the loop, as a small API plus ipywidgets.

Pick a mask (a training positive's, or any drawn mask), write a prompt and a negative
prompt, generate candidates on random training negatives, keep the good ones. Kept
candidates go into a curated set in the generators' layout (``imgs/``, ``masks/``,
``meta/``, ``manifest.csv``); the kept masks and prompts also land where
``diag generate diag --masks CURATED/masks --prompts CURATED/prompts.yaml`` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from diag.chapters.style import readable
from diag.data.ksdd2 import load_mask, read_manifest, split_by_label
from diag.generate.diag import DiagConfig, inpaint_into, load_pipeline
from diag.generate.masks import gt_masks
from diag.generate.output import OutputWriter
from diag.generate.plan import noise_seed
from diag.generate.prompts import load_prompts


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
    """``config``: the DIAG settings candidates are made with (model, guidance, canvas, device)."""

    def __init__(self, data: Path | str, curated: Path | str, config: DiagConfig, pipe=None) -> None:
        self.data, self.curated = Path(data), Path(curated)
        self.config = config
        self._pipe = pipe
        self.negatives, _ = split_by_label(read_manifest(self.data, "train"))
        self.masks = gt_masks(self.data)

    @property
    def pipe(self):
        if self._pipe is None:
            from diag.devices import resolve_device

            self._pipe = load_pipeline(self.config.model, resolve_device(self.config.device))
            self._pipe.set_progress_bar_config(disable=True)
        return self._pipe

    def mask_names(self) -> list[str]:
        return list(self.masks)

    def candidates(
        self, mask_name: str, prompt: str, negative_prompt: str, n: int = 4, seed: int = 0
    ) -> list[Candidate]:
        """``n`` inpaintings of ``prompt`` into random negatives, inside the chosen mask."""
        rng = np.random.default_rng(seed)
        picks = [self.negatives[i].id for i in rng.choice(len(self.negatives), size=n)]
        seeds = [noise_seed(seed, i) for i in range(n)]
        return self.inpaint(picks, mask_name, prompt, negative_prompt, seeds)

    def inpaint(
        self, negatives: list[str], mask_name: str, prompt: str, negative_prompt: str, seeds: list[int]
    ) -> list[Candidate]:
        """Each of ``negatives`` (ids) inpainted as ``diag generate`` would (``inpaint_into``), with its seed."""
        paths = {s.id: s.image_path for s in self.negatives}
        mask = load_mask(self.masks[mask_name])
        images = [Image.open(paths[n]) for n in negatives]
        n = len(negatives)
        results = inpaint_into(self.pipe, images, [mask] * n, [prompt] * n, seeds, self.config, negative_prompt)
        return [
            Candidate(np.asarray(result), shown_mask, negative, mask_name, prompt, negative_prompt, sd)
            for (result, shown_mask), negative, sd in zip(results, negatives, seeds)
        ]

    def keep(self, candidate: Candidate) -> Path:
        """Add a candidate to the curated set (once: keeping the same candidate again adds nothing)."""
        writer = OutputWriter(self.curated)
        row = {
            "negative": candidate.negative,
            "mask": candidate.mask_name,
            "prompt": candidate.prompt,
            "negative_prompt": candidate.negative_prompt,
            "noise_seed": candidate.seed,
            "model": self.config.model,
        }
        for kept in writer.rows():
            if all(kept.get(k) == v for k, v in row.items()):
                return writer.image_path(kept["index"])
        index = max(writer.done(), default=-1) + 1
        writer.write(index, Image.fromarray(candidate.image), candidate.mask, row)
        writer.finish()
        prompts_file = self.curated / "prompts.yaml"
        prompts = yaml.safe_load(prompts_file.read_text()) if prompts_file.is_file() else {"prompts": []}
        if candidate.prompt not in prompts["prompts"]:
            prompts["prompts"].append(candidate.prompt)
        prompts["negative_prompt"] = candidate.negative_prompt
        prompts_file.write_text(yaml.safe_dump(prompts, sort_keys=False))
        return writer.image_path(index)

    def example_figure(self, mask_name: str, prompts: tuple[str, ...], negative_prompt: str, n: int = 4):
        """Candidates for each prompt (one row each, named on the left) inside one mask."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(len(prompts), n, figsize=(1.5 * n + 1.5, 3.2 * len(prompts)), squeeze=False)
        for row, prompt in enumerate(prompts):
            for ax, candidate in zip(axes[row], self.candidates(mask_name, prompt, negative_prompt, n=n, seed=row)):
                ax.imshow(candidate.image)
                ax.contour(candidate.mask, colors="yellow", linewidths=0.5)
                ax.set_xticks([]), ax.set_yticks([])
            axes[row][0].set_ylabel(prompt)
        fig.tight_layout()
        return readable(fig)

    def widget(self):
        """The interactive lab (ipywidgets): mask, prompts, Generate, then Keep per candidate."""
        import ipywidgets as w
        import matplotlib.pyplot as plt
        from IPython.display import display

        paper = load_prompts()  # the lab starts from the paper's first prompt and its negative prompt
        mask = w.Dropdown(options=self.mask_names(), description="mask")
        prompt = w.Text(value=paper.prompts[0], description="prompt")
        negative = w.Text(value=paper.negative_prompt, description="negative")
        generate, output = w.Button(description="Generate"), w.Output()
        state: dict = {}

        def on_generate(_):
            fresh_seed = int(np.random.SeedSequence().generate_state(1)[0])  # every click draws new seeds
            state["candidates"] = self.candidates(mask.value, prompt.value, negative.value, n=4, seed=fresh_seed)
            output.clear_output()
            with output:
                fig, axes = plt.subplots(1, 4, figsize=(8, 4))
                for ax, c in zip(axes, state["candidates"]):
                    ax.imshow(c.image)
                    ax.axis("off")
                plt.show()
                keeps = [w.Button(description=f"Keep {i + 1}") for i in range(4)]
                for i, button in enumerate(keeps):
                    button.on_click(lambda _b, i=i: print("kept:", self.keep(state["candidates"][i])))
                display(w.HBox(keeps))

        generate.on_click(on_generate)
        return w.VBox([mask, prompt, negative, generate, output])
