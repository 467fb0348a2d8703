"""diag: reproducible companion of DIAG (Girella et al., CBMI 2024)."""

__version__ = "0.1.0"
