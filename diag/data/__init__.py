"""KSDD2 data: the official layout, preparation, download and an offline replica."""

from diag.data.ksdd2 import (
    Sample,
    load_image,
    load_mask,
    read_manifest,
    read_official_split,
)

__all__ = [
    "Sample",
    "load_image",
    "load_mask",
    "read_manifest",
    "read_official_split",
]
