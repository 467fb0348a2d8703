"""``diag-demo-inpaint``: a small text-conditioned inpainting diffusion model, pretrained here.

SDXL's weights cannot reach offline machines; this model gives the demo profile the same
ingredients at laptop scale (a *pretrained* text-conditioned inpainting model used
training-free), trained on a procedural corpus that is broader than, and disjoint from,
the KSDD2 replica used for evaluation.
"""
