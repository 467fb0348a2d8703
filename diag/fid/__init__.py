"""FID at the Inception pool layers the paper uses (64, 192) and the usual 2048."""

from diag.fid.features import compute_fid, extract_features
from diag.fid.frechet import fid_from_features, frechet_distance
from diag.fid.inception import FIDInception, load_fid_inception

__all__ = [
    "FIDInception",
    "compute_fid",
    "extract_features",
    "fid_from_features",
    "frechet_distance",
    "load_fid_inception",
]
