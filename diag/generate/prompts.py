"""The expert's prompt file: several prompts, one negative prompt, optional weights.

prompts:
  - white marks on the wall
  - copper metal scratches
negative_prompt: smooth, plain, black, dark, shadow
weights: [1, 1]        # optional: share of N_aug per prompt (default: equal)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from diag.errors import DataError


@dataclass(frozen=True)
class PromptSet:
    prompts: tuple[str, ...]
    negative_prompt: str
    weights: tuple[float, ...]


def load_prompts(path: Path | str | None = None) -> PromptSet:
    """Read a prompt file (YAML or JSON); ``None`` gives the paper's prompts."""
    if path is None:
        text = resources.files("diag.resources").joinpath("prompts-paper.yaml").read_text()
        source = "diag/resources/prompts-paper.yaml"
    else:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: prompt file not found")
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except UnicodeDecodeError as error:
            raise DataError(
                f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8"
            ) from None
    try:
        data = yaml.safe_load(text)  # JSON is valid YAML
    except yaml.YAMLError as error:
        raise DataError(f"{source}: not valid YAML/JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("prompts"), list) or not data["prompts"]:
        raise DataError(f"{source}: needs a non-empty `prompts` list")
    bad = [i for i, p in enumerate(data["prompts"], start=1) if not isinstance(p, str) or not p.strip()]
    if bad:
        raise DataError(
            f"{source}: entry {bad[0]} of `prompts` is {data['prompts'][bad[0] - 1]!r}; every entry must be a "
            "non-empty text (quote it if YAML reads it as a number, a date or null)"
        )
    prompts = tuple(data["prompts"])
    weights = data.get("weights", [1.0] * len(prompts))
    ok = (
        isinstance(weights, list)
        and len(weights) == len(prompts)
        and all(isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w > 0 for w in weights)
    )
    if not ok:
        raise DataError(f"{source}: `weights` must be a list of one finite positive number per prompt; got {weights!r}")
    negative = data.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        raise DataError(f"{source}: `negative_prompt` must be a text (or left empty); got {negative!r}")
    return PromptSet(prompts, "" if negative is None else str(negative), tuple(float(w) for w in weights))
