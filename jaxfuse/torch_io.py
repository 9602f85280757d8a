"""PyTorch interop: the authors' ``state_dict`` checkpoints ↔ jaxfuse parameters.

The authors' Res2NetFuse code saves ``torch.save(model.state_dict(), path)``
(extension usually ``.model``). Its keys map one-to-one onto the jaxfuse
parameter tree (:mod:`jaxfuse.model`); every key has a ``.weight`` (OIHW) and
a ``.bias``::

    PyTorch key prefix                  jaxfuse parameters               OIHW shape
    conv.0.conv                         encoder/conv0                    (32, 1, 3, 3)
    conv.1.conv                         encoder/conv1                    (64, 32, 3, 3)
    res2netBlock.0.conv                 encoder/res2net/conv_in          (64, 64, 1, 1)
    res2netBlock.1.conv.conv            encoder/res2net/conv3            (16, 16, 3, 3)
    res2netBlock.2.conv                 encoder/res2net/conv_out         (64, 64, 1, 1)
    decoder.{i}.conv, i = 0..3          decoder/conv{i}                  (64,64|32,64|16,32|1,16, 3, 3)

The separate-convs form (``ModelConfig(shared=False)``, paper Table I) has no
PyTorch counterpart in the authors' code; jaxfuse names its convs
``res2netBlock.1.convs.{g}.{j}.conv`` ↔ ``encoder/res2net/conv3_g{g}_{j}``
(group ``g = 0..2``, application ``j = 0, 1``), which is what an
``nn.ModuleList`` of ``nn.ModuleList`` of the authors' ``ConvLayer`` under
``res2netBlock.1`` would produce. This naming is jaxfuse's own extension.

The layout is the architecture's :attr:`jaxfuse.model.ArchSpec.torch_keys`
(and the variant a ``state_dict`` holds its ``torch_config``); the
comparison networks (DenseFuse, MSDNet) have none, so only Res2NetFuse
parameters are read and written here.

Kernels are transposed OIHW ↔ HWIO. Both frameworks compute a
cross-correlation with the same zero padding (1 for 3×3, 0 for 1×1), so no
kernel flip is needed and the networks agree to float32 rounding.

:func:`params_from_state_dict` and :func:`state_dict_from_params` work on
NumPy arrays and need no PyTorch; :func:`load_torch_checkpoint` and
:func:`save_torch_checkpoint` read and write the files and need the ``torch``
extra (``pip install 'jaxfuse[torch]'``). Reading uses
``torch.load(weights_only=True)``: tensors and plain containers only, never
arbitrary pickled objects.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxfuse.errors import JaxfuseError
from jaxfuse.io import atomic_write
from jaxfuse import model
from jaxfuse.model import ArchSpec, ModelConfig, Params

INSTALL_HINT = "install the torch extra: pip install 'jaxfuse[torch]'"

# Keys under which training scripts commonly nest the state dict in a bigger dict.
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "generator")

_MAX_LISTED = 5  # how many keys an error message names before "..."


class TorchMissingError(JaxfuseError, ImportError):
    """PyTorch is needed but not installed (both a JaxfuseError and an ImportError)."""


def require_torch(path=None):
    """Imports and returns ``torch``, or raises :class:`TorchMissingError` naming the extra."""
    try:
        import torch  # optional dependency: the ``torch`` extra
    except ImportError:
        raise TorchMissingError(path, f"PyTorch is needed to read or write .model/.pt/.pth files; "
                                      f"{INSTALL_HINT}") from None
    return torch


def _torch_specs() -> list[ArchSpec]:
    """The architectures with a PyTorch layout, in table order."""
    return [s for s in model.ARCH_SPECS.values() if s.torch_keys is not None]


def _names(specs) -> str:
    return " or ".join(s.title for s in specs)


def _torch_spec(config: ModelConfig) -> ArchSpec:
    spec = model.arch_spec(config)
    if spec.torch_keys is None:
        raise ValueError(f"{spec.title} parameters have no PyTorch state_dict layout in jaxfuse "
                         f"(it maps {_names(_torch_specs())})")
    return spec


def key_map(config: ModelConfig = ModelConfig()) -> list[tuple[str, tuple[str, ...], tuple[int, ...]]]:
    """The conv layers of ``config`` as ``(torch_prefix, params_path, oihw_shape)``.

    Each entry stands for two tensors, ``torch_prefix + ".weight"`` (OIHW) ↔
    ``params_path + ("kernel",)`` (HWIO) and ``torch_prefix + ".bias"`` ↔
    ``params_path + ("bias",)``.
    """
    return _torch_spec(config).torch_keys(config)


def _listed(keys) -> str:
    keys = sorted(keys)
    more = f", ... ({len(keys)} in all)" if len(keys) > _MAX_LISTED else ""
    return ", ".join(keys[:_MAX_LISTED]) + more


def _to_numpy(value, key: str, where) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor, without importing torch
        if not value.is_floating_point():
            raise JaxfuseError(where, f"{key} has dtype {value.dtype}, expected a floating-point tensor")
        try:
            value = value.detach().cpu().float().numpy()
        except Exception as e:  # noqa: BLE001 - sparse, quantized or other exotic tensors
            raise JaxfuseError(where, f"{key} cannot be read as a dense float tensor "
                                      f"({type(e).__name__})") from None
    try:
        a = np.asarray(value)
    except Exception:  # noqa: BLE001 - anything that is not array-like
        raise JaxfuseError(where, f"{key} is a {type(value).__name__}, not a tensor") from None
    if a.dtype == object or not (np.issubdtype(a.dtype, np.floating)):
        raise JaxfuseError(where, f"{key} has dtype {a.dtype}, expected a floating-point tensor")
    return a.astype(np.float32)


def _strip_prefix(keys: list[str]) -> str:
    """The common ``module.`` prefix(es) that DataParallel / DDP add, or ''."""
    prefix = ""
    while keys and all(k.startswith(prefix + "module.") for k in keys):
        prefix += "module."
    return prefix


def params_from_state_dict(state_dict: Mapping[str, Any], *, where=None) -> Params:
    """jaxfuse parameters from a Res2NetFuse ``state_dict`` (tensors or arrays).

    The form (shared or separate convs) is read off the keys. A ``module.``
    prefix on every key (``nn.DataParallel``) is dropped. The keys must match
    exactly: missing or unexpected keys, wrong shapes, non-float dtypes and
    NaN/Inf values are refused.

    Args:
      state_dict: key → ``torch.Tensor`` or NumPy array (OIHW kernels).
      where: the file name for error messages.

    Returns:
      The parameter tree of :func:`jaxfuse.model.init_params` (float32).

    Raises:
      JaxfuseError: naming the first problem found.
    """
    if not isinstance(state_dict, Mapping):
        raise JaxfuseError(where, f"holds a {type(state_dict).__name__}, not a state_dict")
    bad = [k for k in state_dict if not isinstance(k, str)]
    if bad:
        raise JaxfuseError(where, f"state_dict has non-string keys ({bad[0]!r})")
    keys = list(state_dict)
    if not keys:
        raise JaxfuseError(where, "state_dict is empty")
    prefix = _strip_prefix(keys)
    sd = {k[len(prefix):]: v for k, v in state_dict.items()}
    # Each architecture with a PyTorch layout names the variant these keys
    # would be; the one whose keys match exactly (else the closest) is read.
    candidates = []
    for spec in _torch_specs():
        config = spec.torch_config(sd)
        rows = spec.torch_keys(config)
        expected = {f"{t}.{s}" for t, _, _ in rows for s in ("weight", "bias")}
        candidates.append((spec, config, rows, expected))
    spec, config, rows, expected = max(candidates, key=lambda c: (c[3] == set(sd), len(c[3] & set(sd))))
    missing, unexpected = expected - set(sd), set(sd) - expected
    what = f"not a {spec.title} state_dict ({spec.form(config)} form)"
    if missing:
        msg = f"{what}: missing keys {_listed(missing)}"
        if unexpected:
            msg += f"; unexpected keys {_listed(unexpected)}"
        raise JaxfuseError(where, msg)
    if unexpected:
        raise JaxfuseError(where, f"{what}: unexpected keys {_listed(unexpected)}")
    params: dict = {}
    for tkey, path, oihw in rows:
        w = _to_numpy(sd[f"{tkey}.weight"], prefix + tkey + ".weight", where)
        b = _to_numpy(sd[f"{tkey}.bias"], prefix + tkey + ".bias", where)
        for name, a, shape in ((".weight", w, oihw), (".bias", b, oihw[:1])):
            if a.shape != shape:
                raise JaxfuseError(where, f"{prefix}{tkey}{name} has shape {tuple(a.shape)}, "
                                          f"expected {shape}")
            if not np.all(np.isfinite(a)):
                raise JaxfuseError(where, f"{prefix}{tkey}{name} contains NaN or Inf")
        node = params
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = {"kernel": jnp.asarray(w.transpose(2, 3, 1, 0)), "bias": jnp.asarray(b)}
    return params


def state_dict_from_params(params: Params) -> "OrderedDict[str, np.ndarray]":
    """The Res2NetFuse ``state_dict`` (NumPy float32, OIHW kernels) of ``params``.

    The keys are those of the authors' model for the shared form (and of
    jaxfuse's naming above for the separate form), in the order of their
    ``Module.state_dict()``.

    Raises:
      ValueError: ``params`` is not a Res2NetFuse tree of the right shapes.
    """
    try:
        config = model.config_from_params(params)
    except ValueError:
        specs = _torch_specs()
        raise ValueError(f"not a {_names(specs)} parameter tree "
                         f"(no {' or '.join('encoder/' + s.marker for s in specs)})") from None
    spec = _torch_spec(config)
    rows = spec.torch_keys(config)
    leaves = [(path + (leaf,)) for _, path, _ in rows for leaf in ("kernel", "bias")]
    want = {tuple(str(getattr(k, "key", k)) for k in kp)
            for kp, _ in jax.tree_util.tree_leaves_with_path(params)}
    if want != set(leaves):
        extra = sorted("/".join(p) for p in want - set(leaves))
        miss = sorted("/".join(p) for p in set(leaves) - want)
        raise ValueError(f"parameter tree does not match {spec.title} ({config}): "
                         f"missing {miss or 'nothing'}, unexpected {extra or 'nothing'}")
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for tkey, path, oihw in rows:
        node = params
        for p in path:
            node = node[p]
        kernel = np.asarray(node["kernel"], np.float32)
        bias = np.asarray(node["bias"], np.float32)
        hwio = (oihw[2], oihw[3], oihw[1], oihw[0])
        if kernel.shape != hwio or bias.shape != oihw[:1]:
            raise ValueError(f"{'/'.join(path)}: kernel {kernel.shape} / bias {bias.shape}, "
                             f"expected {hwio} / {oihw[:1]}")
        out[f"{tkey}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        out[f"{tkey}.bias"] = bias
    return out


def _unwrap(obj, where):
    """The state dict inside what ``torch.load`` returned."""
    def is_tensor_dict(d):
        return isinstance(d, Mapping) and d and all(hasattr(v, "shape") for v in d.values())

    if is_tensor_dict(obj):
        return obj
    if isinstance(obj, Mapping):
        for k in WRAPPER_KEYS:
            if is_tensor_dict(obj.get(k)):
                return obj[k]
        if not obj:
            raise JaxfuseError(where, "holds an empty dict, not a state_dict")
        if any(hasattr(v, "shape") for v in obj.values()):
            return obj  # a state dict with odd entries: let the key check name them
        keys = [repr(k) for k in list(obj)[:_MAX_LISTED]]
        raise JaxfuseError(where, f"holds a dict that is not a state_dict (keys {', '.join(keys)}"
                                  f"{', ...' if len(obj) > _MAX_LISTED else ''}; a wrapped state_dict "
                                  f"is found under {', '.join(WRAPPER_KEYS)})")
    raise JaxfuseError(where, f"holds a {type(obj).__name__}, not a state_dict")


def _load_error(e: Exception) -> str:
    msg = str(e)
    if "Unsupported global" in msg:
        what = msg.split("Unsupported global:", 1)[1].split()
        name = what[1] if len(what) > 1 and what[0] == "GLOBAL" else (what[0] if what else "?")
        return (f"holds a pickled Python object ({name}), not a plain state_dict; jaxfuse loads "
                f"weights only (torch.load weights_only=True). Re-save it with "
                f"torch.save(model.state_dict(), path)")
    if "WeightsUnpickler error:" in msg:  # garbage that reached the unpickler
        rest = msg.split("WeightsUnpickler error:", 1)[1]
        detail = next((line.strip() for line in rest.splitlines() if line.strip()), "")
        detail = f"unpickling failed: {detail}" if detail else "unpickling failed"
    elif isinstance(e, KeyError):  # the legacy (pre-zip) reader on a non-torch file
        detail = "unrecognised file format"
    else:
        first = next((line.strip() for line in msg.splitlines() if line.strip()), "")
        first = re.sub(r"^\[enforce fail at [^\]]*\]\s*\.?\s*", "", first).split(". ")[0]
        detail = f"{type(e).__name__}: {first}" if first else type(e).__name__
    return f"not a PyTorch checkpoint torch.load can read ({detail[:160]})"


def load_state_dict(path) -> Mapping[str, Any]:
    """The raw state dict of a ``.model/.pt/.pth`` file (unwrapped, tensors on CPU)."""
    path = Path(path)
    if not path.exists():
        raise JaxfuseError(path, "no such file")
    if path.is_dir():
        raise JaxfuseError(path, "is a folder, not a PyTorch checkpoint file")
    try:
        if path.stat().st_size == 0:
            raise JaxfuseError(path, "empty file (0 bytes)")
    except OSError as e:
        raise JaxfuseError(path, f"cannot read ({e.strerror})") from None
    torch = require_torch(path)
    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except PermissionError:
        raise JaxfuseError(path, "cannot read (permission denied)") from None
    except Exception as e:  # noqa: BLE001 - torch.load raises many types for bad files
        raise JaxfuseError(path, _load_error(e)) from None
    return _unwrap(obj, path)


def load_torch_checkpoint(path) -> Params:
    """jaxfuse parameters from a PyTorch Res2NetFuse checkpoint file.

    Accepts ``torch.save(model.state_dict(), path)`` of the authors' code (the
    shared form) or of jaxfuse's export (either form), with or without a
    ``module.`` prefix, bare or wrapped in a dict under one of
    :data:`WRAPPER_KEYS`. Needs the ``torch`` extra.

    Raises:
      JaxfuseError: missing file, not a torch file, wrong keys or shapes,
        NaN/Inf weights; :class:`TorchMissingError` (also an ``ImportError``)
        when PyTorch is not installed.
    """
    return params_from_state_dict(load_state_dict(path), where=path)


def save_torch_checkpoint(params: Params, path, *, overwrite: bool = False) -> Path:
    """Writes ``params`` as a PyTorch ``state_dict`` file the authors' code loads.

    ``model.load_state_dict(torch.load(path))`` with the authors'
    ``GenerativeNet`` (shared form) then computes the same network. Written
    atomically (temporary file + rename); needs the ``torch`` extra.

    Raises:
      JaxfuseError: ``path`` exists and ``overwrite`` is False, or is a folder.
      ValueError: ``params`` is not a Res2NetFuse parameter tree.
    """
    path = Path(path)
    if path.is_dir():
        raise JaxfuseError(path, "is a folder; expected a .model/.pt/.pth file name")
    if path.exists() and not overwrite:
        raise JaxfuseError(path, "exists", hint="overwrite")
    torch = require_torch(path)
    sd = state_dict_from_params(params)
    for k, v in sd.items():
        if not np.all(np.isfinite(v)):
            raise ValueError(f"parameters contain NaN or Inf ({k})")
    tensors = OrderedDict((k, torch.from_numpy(v.copy())) for k, v in sd.items())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: torch.save(tensors, f))
    except OSError as e:
        why = ("a parent folder is a file" if isinstance(e, (FileExistsError, NotADirectoryError))
               else e.strerror or str(e))
        raise JaxfuseError(path, f"cannot write ({why})") from None
    return path
