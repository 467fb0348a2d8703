"""Read the tensors of a TorchScript archive without executing its pickled code.

``torch.jit.load`` would run the archive's code; ``torch.load(weights_only=True)`` refuses
TorchScript's module classes. The FID-Inception weights we use ship as TorchScript, so this
module unpickles ``data.pkl`` with an allow-list: tensors are rebuilt from the raw storages
in the zip, module objects become plain dictionaries of their attributes, and any other
global in the pickle raises an error. Nothing in the archive is imported or executed.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path

import torch

STORAGE_DTYPES = {"FloatStorage": torch.float32, "DoubleStorage": torch.float64, "LongStorage": torch.int64}


class ModuleState(dict):
    """A TorchScript module's attributes (what its ``__getstate__`` pickled)."""

    def __setstate__(self, state: dict) -> None:
        self.update(state)


def rebuild_tensor(storage: torch.Tensor, offset: int, size: tuple, stride: tuple, *_: object) -> torch.Tensor:
    return storage.as_strided(size, stride, offset).clone()


class SafeUnpickler(pickle.Unpickler):
    def __init__(self, archive: zipfile.ZipFile, prefix: str, data: bytes) -> None:
        import io

        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> object:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch.jit._pickle", "build_intlist"):
            return list
        if module == "torch" and name in STORAGE_DTYPES:
            return name
        if module.startswith("__torch__."):
            return ModuleState
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a weights file")

    def persistent_load(self, pid: tuple) -> torch.Tensor:
        _, storage_type, key, _location, numel = pid
        raw = bytearray(self.archive.read(f"{self.prefix}/data/{key}"))
        return torch.frombuffer(raw, dtype=STORAGE_DTYPES[storage_type], count=numel)


def flatten(state: object, prefix: str = "") -> dict[str, torch.Tensor]:
    """Dotted names -> tensors, in the order the modules hold them."""
    out: dict[str, torch.Tensor] = {}
    if isinstance(state, torch.Tensor):
        out[prefix.rstrip(".")] = state
    elif isinstance(state, dict):
        for key, value in state.items():
            out.update(flatten(value, f"{prefix}{key}."))
    return out


def read_torchscript_tensors(path: Path | str) -> dict[str, torch.Tensor]:
    """All tensors of a TorchScript archive, by dotted attribute name."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{path}: not a TorchScript archive (found {len(pickles)} data.pkl)")
        prefix = pickles[0].rsplit("/", 1)[0]
        state = SafeUnpickler(archive, prefix, archive.read(pickles[0])).load()
    return flatten(state)
