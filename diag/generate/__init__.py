"""Generators of defective images: DIAG (diffusion inpainting), and later MemSeg and In&Out."""
