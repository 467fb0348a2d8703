"""The release's sampling plan and the prompt file."""

import random
from pathlib import Path

import pytest

from diag.errors import DataError
from diag.generate.plan import noise_seed, per_prompt_counts, release_plan
from diag.generate.prompts import load_prompts


def authors_loop(negatives: list, masks: list, prompts: list, n_aug: int, seed: int) -> list:
    """What the release's generation script does, written as it does it (global random)."""
    random.seed(seed)
    out = []
    for prompt in prompts:
        for _ in range(n_aug // len(prompts)):
            mask = random.sample(masks, 1)[0]
            image = random.sample(negatives, 1)[0]
            out.append((image, mask, prompt))
    return out


@pytest.mark.parametrize("seed", [0, 7])
def test_plan_matches_the_release(seed: int) -> None:
    negatives = [str(10000 + i) for i in range(0, 400, 2)]
    masks = [str(10001 + i) for i in range(0, 60, 2)]
    prompts = list(load_prompts().prompts)
    plan = release_plan(negatives, masks, prompts, 100, seed)
    assert [(p.negative, p.mask, p.prompt) for p in plan] == authors_loop(negatives, masks, prompts, 100, seed)
    assert [p.prompt for p in plan] == [prompts[0]] * 50 + [prompts[1]] * 50
    assert [p.index for p in plan] == list(range(100))


def test_noise_seeds_depend_only_on_seed_and_index() -> None:
    plan_a = release_plan(["a", "b"], ["m"], ["p"], 10, seed=0)
    plan_b = release_plan(["a", "b", "c"], ["m", "n"], ["p", "q"], 20, seed=0)
    assert [p.noise_seed for p in plan_a] == [p.noise_seed for p in plan_b[:10]]
    assert len({noise_seed(0, i) for i in range(1000)}) == 1000
    assert noise_seed(0, 5) != noise_seed(1, 5)


def test_uneven_split_warns() -> None:
    with pytest.warns(UserWarning, match="does not split evenly"):
        assert per_prompt_counts(5, [1, 1]) == [3, 2]
    assert per_prompt_counts(100, [3, 1]) == [75, 25]


def test_bad_plans() -> None:
    with pytest.raises(ValueError, match="mask set is empty"):
        release_plan(["a"], [], ["p"], 2)
    with pytest.raises(ValueError, match="no defect-free"):
        release_plan([], ["m"], ["p"], 2)


def test_prompt_file(tmp_path: Path) -> None:
    paper = load_prompts()
    assert paper.prompts == ("white marks on the wall", "copper metal scratches")
    assert paper.negative_prompt == "smooth, plain, black, dark, shadow"
    custom = tmp_path / "p.json"
    custom.write_text('{"prompts": ["a crack"], "negative_prompt": "", "weights": [2]}')
    assert load_prompts(custom).weights == (2.0,)
    custom.write_text("prompts: []")
    with pytest.raises(DataError, match="p.json: needs a non-empty `prompts` list"):
        load_prompts(custom)
