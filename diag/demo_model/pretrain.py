"""``diag pretrain-demo-model``: train the demo inpainting model from scratch, on a CPU or a GPU.

    diag pretrain-demo-model --out diag/resources/diag-demo-inpaint                # the shipped recipe
    diag pretrain-demo-model --out DIR --device cuda --workers 16                  # the same, faster

The shipped weights were trained on a GPU (about 7 minutes); the same command reproduces
the recipe on 2 CPU cores in about 2 hours (the model card gives both).

Two phases, each a short flat loop:
1. the autoencoder (reconstruction L1) on corpus patches, from its colour-preserving start;
2. the UNet and the text encoder together, the standard inpainting objective: noise the
   patch's latents, give the UNet the mask and the latents of the masked patch, predict the
   noise (MSE, weighted ``mask_loss_weight`` times more inside the mask: outside it the
   masked image gives the answer away, and the prompt only matters inside). Captions are
   dropped (empty prompt) 10 % of the time, which is what makes classifier-free guidance and
   negative prompts work. The learning rate warms up and decays on a cosine over ``steps``;
   the run ends at ``stop_at`` (the shipped run was stopped at 4700 of 12000 by a time
   limit, and the recipe says so rather than pretend otherwise).

The corpus is kept in ``corpus.npz`` and a checkpoint is written every ``checkpoint_every``
steps; a re-run resumes from them. Both are removed when the model is saved.
"""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents
from tqdm.auto import tqdm

from diag.demo_model import build
from diag.demo_model.corpus import render_corpus
from diag.errors import ConfigError, DataError
from diag.files import MARKER, ensure_writable_folder, refuse_foreign_folder, write_atomic, write_text_atomic
from diag.generate.objective import offset_noise, training_target


@dataclass
class PretrainConfig:
    corpus_size: int = 36000  # 64 x 64 patches
    speckled_share: float = 0.8  # of the corpus: KSDD2's kind of surface (corpus.render_speckled)
    full_mask_share: float = 0.15  # whole patch masked, blank masked image: text-to-image (In&Out)
    vae_steps: int = 600
    steps: int = 12000  # UNet + text encoder: the learning rate's cosine runs over this many steps
    stop_at: int | None = 4700  # ... and training stops here (None: at ``steps``); see the model card
    batch_size: int = 64
    vae_batch_size: int = 16
    lr: float = 1e-3
    vae_lr: float = 3e-4  # small: the start already reconstructs colour; 1e-3 disturbed it
    warmup_steps: int = 50
    mask_loss_weight: float = 3.0
    caption_dropout: float = 0.1
    # per-channel constant added to the noise (objective.offset_noise); zero-terminal-SNR v-prediction made it unneeded
    noise_offset: float = 0.0
    seed: int = 0
    threads: int = 2
    workers: int = 1  # processes that render the corpus (the same corpus for any number)
    checkpoint_every: int = 100


def to_unit(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def augment(x: torch.Tensor, m: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random flip / quarter turn for a batch of patches and their masks."""
    k = int(torch.randint(0, 4, (1,), generator=g))
    if torch.rand(1, generator=g) < 0.5:
        x, m = x.flip(-1), m.flip(-1)
    return torch.rot90(x, k, (-2, -1)), torch.rot90(m, k, (-2, -1))


def train_vae(
    vae, images: np.ndarray, config: PretrainConfig, g: torch.Generator, progress: bool = True, device: str = "cpu"
) -> float:
    """Phase 1; returns the latents' scaling factor (1 / std), as Stable Diffusion's VAE has."""
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr)
    vae.train()
    for _ in tqdm(range(config.vae_steps), desc="VAE", disable=not progress):
        idx = torch.randint(0, len(images), (config.vae_batch_size,), generator=g)
        x = to_unit(images[idx.numpy()])
        x, _ = augment(x, x, g)
        x = x.to(device)
        recon = vae.decode(retrieve_latents(vae.encode(x), generator=g)).sample
        loss = F.l1_loss(recon, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    vae.eval()
    with torch.no_grad():
        latents = retrieve_latents(vae.encode(to_unit(images[:512]).to(device)), sample_mode="argmax")
    return float(1.0 / latents.std())


def save_checkpoint(path: Path, step: int, modules: dict, optimizer, extra: dict) -> None:
    state = {
        "step": step,
        "modules": {k: m.state_dict() for k, m in modules.items()},
        "optimizer": optimizer.state_dict() if optimizer else None,
        **extra,
    }
    write_atomic(path, lambda tmp: torch.save(state, tmp))


def corpus_recipe(config: PretrainConfig) -> list:
    """What the corpus depends on: two runs with the same recipe render the same corpus."""
    return [config.seed, config.corpus_size, build.RESOLUTION, config.full_mask_share, config.speckled_share]


def corpus_for(out: Path, config: PretrainConfig, progress: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The run's corpus, rendered once and kept in ``out/corpus.npz`` until the run ends (a resumed run reuses it)."""
    recipe = corpus_recipe(config)
    path = out / "corpus.npz"
    if path.is_file():
        try:  # never unpickle: a damaged or foreign file is rendered anew
            with np.load(path, allow_pickle=False) as kept:
                if kept["recipe"].tolist() == recipe:
                    return kept["images"], kept["masks"], kept["captions"].tolist()
        except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile):
            pass
    images, masks, captions = render_corpus(
        config.seed,
        config.corpus_size,
        build.RESOLUTION,
        config.full_mask_share,
        config.speckled_share,
        workers=config.workers,
        progress=progress,
    )

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
            np.savez(f, images=images, masks=masks, captions=np.array(captions), recipe=np.array(recipe))

    write_atomic(path, save)
    return images, masks, captions


def pretrain(
    out: Path | str, config: PretrainConfig = PretrainConfig(), progress: bool = True, device: str = "cpu"
) -> Path:
    """Train the demo model and save it as a diffusers pipeline folder in ``out``.

    Every random draw comes from one CPU generator, so ``device`` (a GPU where one is at hand)
    changes the speed, not the recipe.
    """
    if config.stop_at is not None and not 0 < config.stop_at <= config.steps:
        raise ConfigError(
            f"stop_at: must be in [1, steps={config.steps}]; got {config.stop_at!r}"
        )
    out = claim_folder(Path(out))
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    g = torch.Generator().manual_seed(config.seed)
    start = time.perf_counter()

    # 1. the resume state (read first: a bad file stops the run before any work), corpus and components
    checkpoint = out / "checkpoint.pt"
    state = load_checkpoint(checkpoint, device) if checkpoint.is_file() else None
    images, masks, captions = corpus_for(out, config, progress)
    tokenizer = build.build_tokenizer()
    text_encoder = build.build_text_encoder(len(tokenizer), tokenizer).to(device)
    vae, unet = build.build_vae().to(device), build.build_unet().to(device)
    scheduler = build.training_scheduler()

    # 2. phase 1: the VAE (skipped on resume)
    if state is None:
        scaling = train_vae(vae, images, config, g, progress, device)
        state = {"step": 0, "modules": {"vae": vae.state_dict()}, "optimizer": None, "scaling": scaling}
        save_checkpoint(checkpoint, 0, {"vae": vae}, None, {"scaling": scaling})
    vae.load_state_dict(state["modules"]["vae"])
    vae.register_to_config(scaling_factor=state["scaling"])
    vae.eval().requires_grad_(False)

    # 3. phase 2: UNet + text encoder, the inpainting objective
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=1e-2)
    lr_schedule = get_cosine_schedule_with_warmup(optimizer, config.warmup_steps, config.steps)
    if state["step"] > 0:
        unet.load_state_dict(state["modules"]["unet"])
        text_encoder.load_state_dict(state["modules"]["text_encoder"])
        optimizer.load_state_dict(state["optimizer"])
        lr_schedule.load_state_dict(state["lr_schedule"])
    g.manual_seed(config.seed + state["step"])  # a resumed run draws what an uninterrupted one would
    unet.train()
    text_encoder.train()
    losses = []
    end = config.stop_at or config.steps
    bar = tqdm(range(state["step"], end), desc="UNet", initial=state["step"], total=end, disable=not progress)
    for step in bar:
        idx = torch.randint(0, len(images), (config.batch_size,), generator=g).numpy()
        x, m = augment(to_unit(images[idx]), torch.from_numpy(masks[idx]).float()[:, None], g)
        x, m = x.to(device), m.to(device)
        texts = [c if torch.rand(1, generator=g) >= config.caption_dropout else "" for c in (captions[i] for i in idx)]
        with torch.no_grad():
            latents = retrieve_latents(vae.encode(x), generator=g) * state["scaling"]
            masked = retrieve_latents(vae.encode(x * (m < 0.5)), generator=g) * state["scaling"]
        small_mask = F.interpolate(m, size=latents.shape[-2:])
        noise = offset_noise(latents.shape, config.noise_offset, g).to(device)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(idx),), generator=g).to(device)
        ids = tokenizer(
            texts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids.to(device)
        prediction = unet(
            torch.cat([scheduler.add_noise(latents, noise, t), small_mask, masked], 1), t, text_encoder(ids)[0]
        ).sample
        weight = 1 + (config.mask_loss_weight - 1) * small_mask
        loss = (weight * (prediction - training_target(scheduler, latents, noise, t)) ** 2).mean() / weight.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        lr_schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == end:
            save_checkpoint(
                checkpoint,
                step + 1,
                {"vae": vae, "unet": unet, "text_encoder": text_encoder},
                optimizer,
                {"scaling": state["scaling"], "lr_schedule": lr_schedule.state_dict()},
            )

    # 4. save as a standard diffusers pipeline, with what was done
    pipe = build.assemble_pipeline(vae, text_encoder.eval(), tokenizer, unet.eval()).to("cpu")
    pipe.save_pretrained(out, safe_serialization=True)
    checkpoint.unlink()  # resume state only; the shipped folder holds just the model
    (out / "corpus.npz").unlink()
    write_text_atomic(
        out / "training.json",
        json.dumps(
            {
                **asdict(config),
                "seconds": round(time.perf_counter() - start, 1),
                "final_loss": float(np.mean(losses[-50:])) if losses else None,
                "parameters": {
                    "unet": build.parameter_count(unet),
                    "vae": build.parameter_count(vae),
                    "text_encoder": build.parameter_count(text_encoder),
                },
                "torch_threads": config.threads,
                "device": torch.cuda.get_device_name(device) if str(device).startswith("cuda") else "cpu",
            },
            indent=2,
        )
        + "\n",
    )
    (out / MARKER).unlink()
    return out


def claim_folder(out: Path) -> Path:
    """``out`` for a pretraining run: new, empty, or an unfinished run of ours (it carries our marker).
    A folder holding anything else, a finished model included, is never written into."""
    if (out / "training.json").is_file() and not (out / MARKER).is_file():
        raise DataError(f"{out}: already holds a finished model (training.json); choose a new --out")
    refuse_foreign_folder(out, MARKER, "a pretraining run")
    ensure_writable_folder(out)
    if not (out / MARKER).is_file():
        (out / MARKER).write_text("a demo model diag is pretraining; run the same command to resume\n")
    return out


def load_checkpoint(path: Path, device) -> dict:
    """A resume state, read without running any code from the file (``weights_only``)."""
    try:
        return torch.load(path, weights_only=True, map_location=device)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError or others for a bad file
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(
            f"{path}: not a resume state diag wrote ({first[:200]}); move it away to start the run over"
        ) from None
