"""Fusion methods with no trained weights: the paper's transform and sparse-coding baselines.

Each method is a module with a pure function ``fuse(ir, vis, **options)``:

* ``ir``, ``vis``: registered grayscale images, ``(H, W)`` float, 0–255
  (a colour visible image goes through the colour path first, as for the
  networks: only its luma Y is fused).
* returns ``(H, W)`` float32 on the 0–255 scale, before the method's output
  step; the module's ``OUTPUT_STEP`` names that step (``"round"``, the
  default: clip to 0–255 and round halves up, as MATLAB's ``uint8``
  conversion does; ``"minmax"``: the networks' min–max stretch,
  :func:`jaxfuse.fusion.to_uint8`).

The registry :data:`METHODS` maps a name (``fuse.py --method NAME``) to its
:class:`Method`; :func:`get_method` looks one up.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Mapping

import numpy as np


@dataclasses.dataclass(frozen=True)
class Method:
    """One weight-free fusion method.

    Attributes:
      name: the ``--method`` name.
      title: its name in reports (as the paper writes it).
      module: the module under :mod:`jaxfuse.methods` holding its function.
      function: that function's name.
      reference: the paper it implements.
      options: keyword options passed to ``fuse`` (e.g. a seed).
    """
    name: str
    title: str
    module: str
    function: str
    reference: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def fuse_fn(self) -> Callable:
        """The method's pure ``fuse(ir, vis, **options)``."""
        return getattr(importlib.import_module(f"jaxfuse.methods.{self.module}"), self.function)

    @property
    def output_step(self) -> str:
        """``"round"`` or ``"minmax"`` (see the module docstring)."""
        mod = importlib.import_module(f"jaxfuse.methods.{self.module}")
        return getattr(mod, "OUTPUT_STEP", "round")

    @property
    def source(self) -> str:
        """The code of the method's module and of every :mod:`jaxfuse.methods` module it uses.

        What a cache of its fused images is stamped with (with the options).
        """
        import inspect
        import types
        seen: dict[str, str] = {}
        todo = [f"jaxfuse.methods.{self.module}"]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            mod = importlib.import_module(name)
            seen[name] = inspect.getsource(mod)
            for v in vars(mod).values():
                used = v.__name__ if isinstance(v, types.ModuleType) else getattr(v, "__module__", "")
                if isinstance(used, str) and used.startswith("jaxfuse.methods.") and used not in seen:
                    todo.append(used)
        return "".join(seen[k] for k in sorted(seen))

    def fuse_gray(self, ir: np.ndarray, vis: np.ndarray) -> np.ndarray:
        """Fuses two grayscale ``(H, W)`` 0–255 images into the ``(H, W)`` uint8 that is written."""
        out = np.asarray(self.fuse_fn(np.asarray(ir, np.float32), np.asarray(vis, np.float32),
                                      **self.options), np.float32)
        if self.output_step == "minmax":
            from jaxfuse.fusion import to_uint8
            return np.asarray(to_uint8(out[None, :, :, None]))[0, :, :, 0]
        return np.floor(np.clip(out, 0, 255) + 0.5).astype(np.uint8)  # MATLAB's uint8()


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("dchwt", "DCHWT", "dchwt", "fuse",
           "B. S. Kumar, Signal, Image and Video Processing 7(6), 1125–1143, 2013"),
    Method("jsr", "JSR", "jsr", "fuse_jsr",
           "Q. Zhang, Y. Fu, H. Li, J. Zou, Optical Engineering 52(5), 057006, 2013"),
    Method("jsrsd", "JSRSD", "jsr", "fuse_jsrsd",
           "C. Liu, Y. Qi, W. Ding, Infrared Physics & Technology 83, 94–102, 2017"),
)}
METHOD_NAMES = tuple(METHODS)


def get_method(name: str) -> Method:
    """The :class:`Method` called ``name``.

    Raises:
      ValueError: an unknown name.
    """
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown fusion method {name!r}; choose from {', '.join(METHODS)}") from None
