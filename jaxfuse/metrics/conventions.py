"""Metric conventions: one named table of metric functions per evaluator.

Fusion papers report numbers from different evaluators that disagree (MI in
bits or nats, a sum or a mean of two SSIMs, different gradients, different
image reading). A :class:`Convention` fixes all of that for one evaluator:

* how an image file is read (:attr:`Convention.load`), since evaluators
  differ there too (float BT.601 luma, OpenCV's integer grey conversion,
  MATLAB's ``imread`` keeping colour);
* the metric functions, by the names that evaluator prints, each
  ``fn(ir, vis, fused) -> float`` on arrays as ``load`` returns them (the
  argument order is always infrared, visible, fused, whatever order the
  evaluator itself uses internally);
* the default set it reports, and which metrics are better when lower.

A name means one thing inside one convention and is never resolved across
conventions: ``SSIM`` under ``cddfuse`` is CDDFuse's sum of two SSIMs,
``Ssim`` under ``vifb`` is VIFB's, ``SSIM_a`` under ``standard`` the mean of
Wang et al.'s SSIM.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import numpy as np

Metric = Callable[..., float]


@dataclass(frozen=True)
class Convention:
    """One evaluator's metrics.

    Attributes:
      name: the convention's name (``--convention NAME``).
      summary: one line for ``--help`` and the README.
      functions: ``{canonical name: fn(ir, vis, fused) -> float}``.
      defaults: the names the evaluator reports by default, in its order.
      load: ``path -> array``: how the evaluator reads an image file; the
        result is what ``functions`` take (0–255 values).
      aliases: extra accepted names (matched case-insensitively) → canonical.
      lower_is_better: names whose best value is the smallest.
      note: printed under tables of this convention (a quirk users must know).
      pair_scorer: optional ``(ir, vis) -> scorer`` whose ``scorer.score(fused,
        names)`` gives the same values as :meth:`score` while doing the
        sources' share of the work once per pair (many methods, one pair).
    """

    name: str
    summary: str
    functions: Mapping[str, Metric]
    defaults: tuple[str, ...]
    load: Callable[..., np.ndarray]
    aliases: Mapping[str, str] = field(default_factory=dict)
    lower_is_better: frozenset[str] = frozenset()
    note: str = ""
    pair_scorer: Callable | None = None

    def __post_init__(self):
        missing = [n for n in self.defaults if n not in self.functions]
        if missing:
            raise ValueError(f"convention {self.name!r}: defaults not in functions: {missing}")

    def names(self) -> tuple[str, ...]:
        """Every canonical metric name of this convention."""
        return tuple(self.functions)

    def resolve(self, name: str) -> str:
        """The canonical name for ``name`` (case-insensitive), or ValueError."""
        key = str(name).strip()
        if key in self.functions:
            return key
        upper = key.upper()
        for alias, canon in self.aliases.items():
            if alias.upper() == upper:
                return canon
        for canon in self.functions:
            if canon.upper() == upper:
                return canon
        raise ValueError(f"unknown metric {name!r} for convention {self.name!r} "
                         f"(known: {', '.join(self.names())})")

    def resolve_all(self, names: Iterable[str] | None) -> list[str]:
        """Canonical names for ``names`` (default: :attr:`defaults`), first occurrence kept."""
        out: list[str] = []
        for n in (self.defaults if names is None else names):
            canon = self.resolve(n)
            if canon not in out:
                out.append(canon)
        return out

    def higher_is_better(self, name: str) -> bool:
        return self.resolve(name) not in self.lower_is_better

    def score(self, ir, vis, fused, metrics: Iterable[str] | None = None) -> dict[str, float]:
        """``{name: value}`` for ``metrics`` (default :attr:`defaults`) on one triple."""
        names = self.resolve_all(metrics)
        return {n: float(self.functions[n](ir, vis, fused)) for n in names}


# name -> module defining CONVENTION (imported on first use: some pull in JAX).
_MODULES = {
    "paper": "jaxfuse.metrics.paper",
    "standard": "jaxfuse.metrics.standard",
    "cddfuse": "jaxfuse.metrics.cddfuse",
    "vifb": "jaxfuse.metrics.vifb",
}

CONVENTIONS: tuple[str, ...] = tuple(_MODULES)
"""Every convention's name."""

_LOADED: dict[str, Convention] = {}


def get_convention(name: str) -> Convention:
    """The :class:`Convention` called ``name``.

    Raises:
      ValueError: unknown name.
    """
    if isinstance(name, Convention):
        return name
    if name not in _MODULES:
        raise ValueError(f"unknown convention {name!r} (expected one of: {', '.join(CONVENTIONS)})")
    if name not in _LOADED:
        _LOADED[name] = importlib.import_module(_MODULES[name]).CONVENTION
    return _LOADED[name]
