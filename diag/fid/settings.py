"""FID's and KID's settings (the ``fid`` section of ``diag.config``), and their defaults, which the
functions of ``diag.fid`` take as their own: one place for each."""

from __future__ import annotations

from dataclasses import dataclass, field

from diag.errors import ConfigError


@dataclass
class FIDConfig:
    dims: list[int] = field(default_factory=lambda: [64, 192])  # Table III's: the first and second max-pool
    batch_size: int = 50
    device: str = "auto"
    # KID beside FID (the paper reports none): its spread over random subsets of this size (or the smaller set's)
    kid_subset_size: int = 50
    kid_subsets: int = 100

    def validate(self) -> None:
        from diag.fid.inception import BLOCK_INDEX_BY_DIM  # the dims Inception's blocks give

        if not self.dims or not set(self.dims) <= set(BLOCK_INDEX_BY_DIM):
            raise ConfigError(f"fid.dims: must be among {sorted(BLOCK_INDEX_BY_DIM)}; got {self.dims!r}")
        if self.batch_size < 1:
            raise ConfigError(f"fid.batch_size: must be >= 1; got {self.batch_size!r}")
        if self.kid_subset_size < 2:
            raise ConfigError(f"fid.kid_subset_size: must be >= 2; got {self.kid_subset_size!r}")
        if self.kid_subsets < 1:
            raise ConfigError(f"fid.kid_subsets: must be >= 1; got {self.kid_subsets!r}")


DEFAULTS = FIDConfig()
DIMS = tuple(DEFAULTS.dims)  # as the functions' default argument
