"""Generators of defective images: DIAG (diffusion inpainting), MemSeg (procedural anomalies pasted in)
and In&Out (a DreamBooth + LoRA fine-tune of Stable Diffusion, sampled)."""
