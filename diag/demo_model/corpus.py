"""The demo model's pretraining corpus: procedural surfaces with captioned defects.

Broader than the evaluation replica on purpose: five surface families (dark metal, painted
wall, fabric, wood, concrete) at many brightnesses, tints and scales, and eight defect kinds
(white marks, copper scratches, rust stains, dark spots, cracks, blue flecks, grey smudges,
bright streaks) with captions that name kind, colour and shape. Plain captions describe
defect-free regions. Every sample comes from its own generator seeded with a tag that the
replica never uses, so the model never sees the images it is evaluated on.

Samples are made the way the DIAG generator will use the model: a surface with a defect is
rendered on a larger canvas at a random zoom, and the patch is the box around the defect's
mask with a few pixels of padding (diffusers' own ``get_crop_region``, as the generator's
``padding_mask_crop`` does), resized to ``size``. So the mask fills as much of a training
patch as it fills of an inference crop (a median of ~0.3 of the box on the replica; a
centred 64-pixel patch gave 0.17, and the first model, trained that way, learned to
continue the surround more than to draw the prompt).

Version 3 adds two things (see the model card):
- a *speckled metal* family, half the corpus: KSDD2's kind of surface and defects (bright
  near-neutral scratches, copper smears, bluish flecks under coarse masks) drawn by the
  replica's own renderers (``diag.data.synthetic``) from this corpus's random streams, with
  captions in the words the paper's prompts use. SDXL has seen metal surfaces and scratches;
  this is the demo model's equivalent, and it makes the demo model know the replica's kind of
  surface better than SDXL may know KSDD2's (the book says so).
- full masks (``full_mask_share`` of the samples): the whole patch is masked and the masked
  image blank, as inpainting models are trained, so the model can also draw a whole surface
  from the prompt alone (In&Out's text-to-image). Speckled full-mask patches are windows at
  the image's own scale (1:1), so a wider canvas tiles into a whole surface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from diffusers.image_processor import VaeImageProcessor
from PIL import Image, ImageDraw
from scipy import ndimage

CORPUS_TAG = 4242  # the replica uses 2021; procedural masks 7919
SURFACES = {
    "metal": ["metal surface", "dark metal", "metal plate", "steel surface"],
    "wall": ["wall", "painted wall", "plaster wall"],
    "fabric": ["fabric", "woven cloth", "textile"],
    "wood": ["wood", "wooden board", "timber"],
    "concrete": ["concrete", "stone surface", "cement floor"],
}
DEFECTS = {
    # kind: (colour change per channel at full strength, caption phrases, shape)
    "white_marks": ((150, 150, 160), ["white marks", "white mark", "bright white marks", "white stains"], "blob"),
    "copper_scratches": (
        (95, 55, 25),
        ["copper scratches", "copper metal scratches", "copper scratch", "brown scratches"],
        "lines",
    ),
    "rust": ((80, 35, 5), ["rust stain", "orange rust", "brown rust spot"], "blob"),
    "dark_spot": ((-60, -60, -55), ["dark spot", "black spot", "dark stain"], "blob"),
    "crack": ((-70, -70, -65), ["crack", "thin dark crack", "black crack"], "line"),
    "blue_flecks": ((40, 60, 110), ["blue flecks", "bluish specks", "blue dots"], "flecks"),
    "grey_smudge": ((40, 40, 40), ["grey smudge", "grey smear", "dull smudge"], "blob"),
    "bright_streak": ((170, 175, 185), ["bright streak", "white scratch", "silver scratch", "white scratches"], "line"),
}
# The speckled family's defect kinds (the replica's) and the phrases that name them.
SPECKLED_PHRASES = {
    "scratch": DEFECTS["white_marks"][1] + DEFECTS["bright_streak"][1],
    "smear": DEFECTS["copper_scratches"][1] + ["copper smear", "copper stain"],
    "flecks": DEFECTS["blue_flecks"][1],
}
SPECKLED_SHARE = 0.5  # of the corpus (v3's; PretrainConfig.speckled_share sets a run's)
PLAIN_CAPTIONS = ["plain {s}", "clean {s}", "smooth {s}", "{s}", "undamaged {s}"]
DEFECT_CAPTIONS = ["{d} on the {s}", "{d} on {s}", "{d}", "a {s} with {d}"]


def vocabulary() -> list[str]:
    """Every word a caption can use (each becomes one tokenizer token)."""
    words = set()
    phrases = [p for v in SURFACES.values() for p in v] + [p for _, ps, _ in DEFECTS.values() for p in ps]
    phrases += [p for ps in SPECKLED_PHRASES.values() for p in ps]
    phrases += PLAIN_CAPTIONS + DEFECT_CAPTIONS + ["smooth, plain, black, dark, shadow", "with on the a"]
    for phrase in phrases:
        words.update(w for w in phrase.replace("{s}", "").replace("{d}", "").replace(",", " ").split())
    return sorted(words)


@dataclass
class Sample:
    image: np.ndarray  # (size, size, 3) uint8
    mask: np.ndarray  # (size, size) bool: the region to inpaint
    caption: str  # what the masked region should contain


def noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float | tuple[float, float]) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return field / (field.std() + 1e-8)


def render_surface(rng: np.random.Generator, family: str, size: int, zoom: float) -> np.ndarray:
    """A surface patch (float grey levels, (size, size, 3)); ``zoom`` > 1 magnifies texture."""
    shape = (size, size)
    base = {
        "metal": rng.uniform(25, 90),
        "wall": rng.uniform(120, 230),
        "fabric": rng.uniform(50, 200),
        "wood": rng.uniform(70, 170),
        "concrete": rng.uniform(90, 180),
    }[family]
    tint = rng.normal(0, 0.06, size=3) + {"wood": np.array([0.25, 0.05, -0.2]), "fabric": rng.normal(0, 0.2, 3)}.get(
        family, 0
    )
    grey = np.full(shape, base)
    grain = max(0.5, 0.6 * zoom)
    amp = base * rng.uniform(0.08, 0.25)
    if family == "metal":
        grey += amp * noise(rng, shape, grain) + 0.4 * amp * noise(rng, shape, (12 * zoom, 0.8 * zoom))
    elif family == "wall":
        grey += 0.4 * amp * noise(rng, shape, grain) + 0.5 * amp * noise(rng, shape, 8 * zoom)
    elif family == "fabric":
        y, x = np.mgrid[0:size, 0:size] / max(zoom, 0.5)
        period = rng.uniform(3, 7)
        grey += amp * (np.sin(2 * np.pi * x / period) * np.sin(2 * np.pi * y / period)) + 0.3 * amp * noise(
            rng, shape, grain
        )
    elif family == "wood":
        y, x = np.mgrid[0:size, 0:size] / max(zoom, 0.5)
        warp = 6 * noise(rng, shape, 10 * zoom)
        grey += amp * np.sin(2 * np.pi * (x + warp) / rng.uniform(5, 12)) + 0.3 * amp * noise(rng, shape, grain)
    else:
        grey += 0.6 * amp * noise(rng, shape, grain) + 0.6 * amp * noise(rng, shape, 5 * zoom)
    if rng.random() < 0.5:  # random orientation of any directional texture
        grey = np.rot90(grey, k=int(rng.integers(1, 4)))
    return grey[..., None] * (1 + tint)


def defect_alpha(rng: np.random.Generator, shape: str, size: int) -> np.ndarray:
    """The defect's footprint (soft alpha in [0, 1]) somewhere in the patch."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy = rng.uniform(0.25, 0.75, size=2) * size
    if shape == "blob":
        for _ in range(int(rng.integers(1, 4))):
            r = rng.uniform(0.06, 0.22) * size
            ox, oy = rng.normal(0, r / 2, size=2)
            draw.ellipse(
                [cx + ox - r, cy + oy - r * rng.uniform(0.5, 1.2), cx + ox + r, cy + oy + r * rng.uniform(0.5, 1.2)],
                fill=255,
            )
        sigma = rng.uniform(1.0, 3.0)
    elif shape in ("line", "lines"):  # "lines": a bundle of roughly parallel scratches
        angle, length = rng.uniform(0, np.pi), rng.uniform(0.3, 0.9) * size
        for _ in range(1 if shape == "line" else int(rng.integers(2, 6))):
            offset, tilt = rng.normal(0, 0.06 * size), angle + rng.normal(0, 0.08)
            ox, oy = cx - offset * np.sin(angle), cy + offset * np.cos(angle)
            points = []
            for t in np.linspace(-0.5, 0.5, 12):
                bend = rng.normal(0, 0.02) * size
                points.append(
                    (
                        ox + t * length * np.cos(tilt) - bend * np.sin(tilt),
                        oy + t * length * np.sin(tilt) + bend * np.cos(tilt),
                    )
                )
            draw.line(points, fill=255, width=int(rng.integers(1, 6)))
        sigma = 0.7
    else:  # flecks
        for _ in range(int(rng.integers(4, 14))):
            x, y = cx + rng.normal(0, 0.12 * size), cy + rng.normal(0, 0.12 * size)
            r = rng.uniform(0.5, 1.8)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
        sigma = 0.6
    alpha = ndimage.gaussian_filter(np.asarray(canvas, float) / 255, sigma)
    return alpha / max(alpha.max(), 1e-6)


def region_mask(alpha: np.ndarray | None, rng: np.random.Generator, size: int) -> np.ndarray:
    """A coarse mask around the defect with a margin, or a random region for plain samples."""
    if alpha is None:
        alpha = defect_alpha(rng, "blob", size)
    margin = rng.uniform(2, 7)
    distance = ndimage.distance_transform_edt(alpha < 0.2)
    return ndimage.gaussian_filter((distance <= margin).astype(float), margin / 2) > 0.5


def crop_around(image: np.ndarray, mask: np.ndarray, pad: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The box around ``mask`` (padded, squared, inside the canvas), resized to ``size``."""
    mask_image = Image.fromarray(mask.astype(np.uint8) * 255)
    box = VaeImageProcessor.get_crop_region(mask_image, size, size, pad=pad)
    crop = Image.fromarray(image).crop(box).resize((size, size), Image.Resampling.BICUBIC)
    crop_mask = mask_image.crop(box).resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(crop), np.asarray(crop_mask) > 0


def surface_caption(rng: np.random.Generator, family: str) -> str:
    """A word for the surface: mostly the family's own, sometimes any family's (the pixels say what it is)."""
    words = SURFACES[family] if rng.random() < 0.7 else [w for ws in SURFACES.values() for w in ws]
    return str(rng.choice(words))


def caption_for(rng: np.random.Generator, phrases: list[str] | None, surface_word: str) -> str:
    """A defect caption from ``phrases``, or a plain one when None."""
    if phrases is None:
        return str(rng.choice(PLAIN_CAPTIONS)).format(s=surface_word)
    return str(rng.choice(DEFECT_CAPTIONS)).format(d=rng.choice(phrases), s=surface_word)


def render_sample(
    seed: int,
    index: int,
    size: int = 64,
    p_plain: float = 0.25,
    full_mask_share: float = 0.15,
    speckled_share: float = SPECKLED_SHARE,
) -> Sample:
    """One corpus sample, deterministic for (seed, index)."""
    rng = np.random.default_rng([CORPUS_TAG, seed, index])
    full = rng.random() < full_mask_share
    if rng.random() < speckled_share:
        return render_speckled(rng, size, p_plain, full)
    canvas = size * 3 // 2  # room for context around the mask before cropping
    family = str(rng.choice(list(SURFACES)))
    surface_word = surface_caption(rng, family)
    image = render_surface(rng, family, canvas, zoom=float(np.exp(rng.uniform(np.log(0.4), np.log(2.5)))))
    if rng.random() < p_plain:
        mask = region_mask(None, rng, canvas)
        caption = caption_for(rng, None, surface_word)
    else:
        kind = str(rng.choice(list(DEFECTS)))
        colour, phrases, shape = DEFECTS[kind]
        alpha = defect_alpha(rng, shape, canvas)
        strength = rng.uniform(0.35, 1.1)
        texture = np.clip(1 + 0.3 * noise(rng, (canvas, canvas), 1.0), 0.3, 1.7)
        image = image + (alpha * texture)[..., None] * np.array(colour) * strength
        mask = region_mask(alpha, rng, canvas)
        caption = caption_for(rng, phrases, surface_word)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    image, mask = crop_around(image, mask, pad=int(rng.integers(1, 9)), size=size)
    return Sample(image, np.ones_like(mask) if full else mask, caption)


def render_speckled(rng: np.random.Generator, size: int, p_plain: float, full: bool) -> Sample:
    """A sample of the speckled family, drawn by the replica's renderers with this corpus's stream.

    Inpainting samples are cut as the DIAG generator cuts an inference crop (the box around a
    coarse mask, 2 px of padding, resized to ``size``); full-mask samples are ``size``-pixel
    windows at the image's own scale, captioned by what they contain.
    """
    from diag.data import synthetic

    surface = synthetic.render_surface(rng)
    word = surface_caption(rng, "metal")
    if rng.random() < p_plain:
        kind = str(rng.choice(list(synthetic.RENDERERS)))
        margin = rng.uniform(*synthetic.MASK_MARGIN)
        defect = synthetic.RENDERERS[kind](rng, synthetic.sample_area(rng), margin)  # only for its mask's shape
        image, mask, kinds = surface, synthetic.coarse_mask(defect.footprint, margin), []
    else:
        image, mask, kinds = synthetic.render_positive(rng, surface)
    image = synthetic.to_uint8(image)
    if not full:
        if not mask.any():  # a rare empty footprint: mask a blob in the middle instead
            mask[
                synthetic.HEIGHT // 2 - 8 : synthetic.HEIGHT // 2 + 8,
                synthetic.WIDTH // 2 - 8 : synthetic.WIDTH // 2 + 8,
            ] = True
        phrases = SPECKLED_PHRASES[kinds[0]] if kinds else None
        crop, crop_mask = crop_around(image, mask, pad=2, size=size)
        return Sample(crop, crop_mask, caption_for(rng, phrases, word))
    height, width = mask.shape
    if kinds and rng.random() < 0.5:  # half the windows of a positive hold (part of) its defect
        ys, xs = np.nonzero(mask)
        pick = int(rng.integers(len(ys)))
        top = int(np.clip(ys[pick] - rng.integers(size), 0, height - size))
        left = int(np.clip(xs[pick] - rng.integers(size), 0, width - size))
    else:
        top, left = int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1))
    window = (slice(top, top + size), slice(left, left + size))
    holds_defect = kinds and mask[window].mean() > 0.02
    caption = caption_for(rng, SPECKLED_PHRASES[kinds[0]] if holds_defect else None, word)
    return Sample(image[window], np.ones((size, size), bool), caption)


def render_corpus(
    seed: int,
    count: int,
    size: int = 64,
    full_mask_share: float = 0.15,
    speckled_share: float = SPECKLED_SHARE,
    workers: int = 1,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``count`` samples stacked: images (N, size, size, 3) uint8, masks (N, size, size) bool, captions.

    Each sample has its own generator, so ``workers`` processes give the same corpus as one.
    """
    from functools import partial
    from multiprocessing import get_context

    from tqdm.auto import tqdm

    render = partial(render_sample, seed, size=size, full_mask_share=full_mask_share, speckled_share=speckled_share)
    if workers > 1:
        with get_context("fork").Pool(workers) as pool:
            samples = list(
                tqdm(pool.imap(render, range(count), chunksize=64), total=count, desc="corpus", disable=not progress)
            )
    else:
        samples = [render(i) for i in tqdm(range(count), desc="corpus", disable=not progress)]
    return (np.stack([s.image for s in samples]), np.stack([s.mask for s in samples]), [s.caption for s in samples])
