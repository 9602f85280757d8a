"""Analytic convolution FLOPs of a network, read off its parameter tree.

Every conv kernel of shape ``(kh, kw, cin, cout)`` costs ``2·kh·kw·cin·cout``
FLOPs per output pixel each time the network applies it (all convolutions
are stride 1 with "same" padding, so output pixels = image pixels). The
number of applications is counted once on the traced network (shapes only,
nothing computed): a kernel that one Flax module reuses, as the shared 3×3
conv of the Res2Net block (six applications), appears once in the tree but
costs six times.
"""

from __future__ import annotations

import dataclasses
from collections import Counter


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """One conv kernel of the tree: where it sits, its shape, its applications per pass."""
    path: str
    shape: tuple[int, int, int, int]  # kh, kw, cin, cout (Flax's HWIO)
    uses: int

    @property
    def part(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def fpp(self) -> int:
        """FLOPs per output pixel, all applications."""
        kh, kw, cin, cout = self.shape
        return 2 * kh * kw * cin * cout * self.uses


@dataclasses.dataclass(frozen=True)
class ConvFlops:
    """Per-pixel conv FLOPs of one network; ``layers`` in the order they are first applied."""
    layers: tuple[ConvLayer, ...]

    def _sum(self, part: str) -> int:
        return sum(layer.fpp for layer in self.layers if layer.part == part)

    @property
    def encoder(self) -> int:
        return self._sum("encoder")

    @property
    def decoder(self) -> int:
        return self._sum("decoder")

    @property
    def first_layer(self) -> int:
        """The encoder's convs on the (1-channel) image: no input gradient in training."""
        return sum(layer.fpp for layer in self.layers if layer.part == "encoder" and layer.shape[2] == 1)

    @property
    def decoder_first(self) -> ConvLayer:
        return next(layer for layer in self.layers if layer.part == "decoder")

    @property
    def big_layer_share(self) -> float:
        """The decoder's first conv (the heaviest of Res2NetFuse) as a share of a fusion's FLOPs."""
        return self.decoder_first.fpp / (2 * self.encoder + self.decoder)

    def fusion(self, h: int, w: int, k: int = 2) -> float:
        """k encoders + one decoder (the fusion strategy itself is negligible)."""
        return float((k * self.encoder + self.decoder) * h * w)

    def train(self, h: int, w: int) -> float:
        """Forward + weight gradients + input gradients (none for the first layer)."""
        fwd = (self.encoder + self.decoder) * h * w
        return float(3 * fwd - self.first_layer * h * w)


def _kernel_uses(params) -> tuple[Counter, list]:
    """How often the traced network applies each leaf of ``params`` as a conv kernel.

    Returns ``(uses by leaf index, leaf indices in order of first application)``.
    """
    import jax
    import jax.numpy as jnp

    from jaxfuse import model

    shapes = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), params)
    image = jax.ShapeDtypeStruct((1, 8, 8, 1), jnp.float32)
    # traced with flax's convolutions: the oneDNN calls hide their kernels in custom calls,
    # and the count is the network's, whichever kernels run it
    from jaxfuse import conv_native
    with conv_native.xla_convolutions():
        closed = jax.make_jaxpr(lambda p, x: model.reconstruct(p, x))(shapes, image)
    n_leaves = len(jax.tree_util.tree_leaves(shapes))
    uses: Counter = Counter()
    order: list = []

    def walk(jaxpr, leaf_of):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "conv_general_dilated":
                leaf = leaf_of.get(eqn.invars[1])
                if leaf is not None:
                    uses[leaf] += 1
                    if leaf not in order:
                        order.append(leaf)
            for sub in _sub_jaxprs(eqn):
                if len(sub.invars) == len(eqn.invars):
                    walk(sub, {s: leaf_of[o] for s, o in zip(sub.invars, eqn.invars)
                               if not _is_literal(o) and o in leaf_of})

    top = closed.jaxpr
    walk(top, {v: i for i, v in enumerate(top.invars[:n_leaves])})
    return uses, order


def _sub_jaxprs(eqn):
    for value in eqn.params.values():
        for v in value if isinstance(value, (tuple, list)) else (value,):
            inner = getattr(v, "jaxpr", None)  # a ClosedJaxpr
            if inner is not None and hasattr(inner, "eqns"):
                yield inner
            elif hasattr(v, "eqns") and hasattr(v, "invars"):
                yield v


def _is_literal(v) -> bool:
    return not hasattr(v, "aval") or type(v).__name__ == "Literal"


def conv_flops(params) -> ConvFlops:
    """Walks ``params`` for conv kernels (4-d leaves named ``kernel``) and counts their FLOPs."""
    import jax

    leaves = jax.tree_util.tree_leaves_with_path(params)
    uses, order = _kernel_uses(params)
    kernels = [i for i, (path, leaf) in enumerate(leaves)
               if getattr(path[-1], "key", None) == "kernel" and len(leaf.shape) == 4]
    ranked = sorted(kernels, key=lambda i: order.index(i) if i in order else len(order) + i)
    layers = tuple(ConvLayer("/".join(str(getattr(k, "key", k)) for k in leaves[i][0]),
                             tuple(int(d) for d in leaves[i][1].shape), uses[i])
                   for i in ranked)
    return ConvFlops(layers)
