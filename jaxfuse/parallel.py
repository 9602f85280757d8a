"""Many devices: fusion of a batch of pairs and data-parallel training.

Both use ``jax.sharding``: a one-axis mesh ``("data",)`` over the devices,
parameters and optimizer state replicated, the batch axis split across
devices. XLA inserts the gradient all-reduce itself, so the train step is the
same jitted function as on one device. On a CPU-only machine, several host
devices can be simulated with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxfuse.fusion import fuse


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh named ``"data"`` over ``devices`` (default: all devices)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), ("data",))


def replicate(tree, mesh: Mesh):
    """Places every leaf of ``tree`` on all devices of ``mesh`` (with ``jax.distributed``,
    every process passes the same values)."""
    sharding = NamedSharding(mesh, P())
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def one(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])
    return jax.tree_util.tree_map(one, tree)


def shard_batch(x, mesh: Mesh, axis: int = 0):
    """Splits ``x`` along ``axis`` over the mesh's ``"data"`` devices.

    The axis length must be a multiple of the device count (see :func:`pad_to`).
    """
    spec = [None] * np.ndim(x)
    spec[axis] = "data"
    return jax.device_put(x, NamedSharding(mesh, P(*spec)))


def init_distributed(coordinator: str, num_processes: int, process_id: int) -> None:
    """Joins this process to a ``jax.distributed`` job (CPU collectives: gloo over TCP).

    Every process gives the same ``coordinator`` (``host:port`` of process 0)
    and ``num_processes``, and its own ``process_id``; ``jax.devices()`` is
    then every process's devices.
    """
    from jaxfuse.errors import JaxfuseError
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise JaxfuseError(None, f"{{process_id}} {process_id} is not in 0…{num_processes - 1} "
                           f"for {{num_processes}} {num_processes}",
                           settings=("process_id", "num_processes"))
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id,
                                   initialization_timeout=120)
    except Exception as e:  # noqa: BLE001 - a refused or timed-out coordinator
        raise JaxfuseError(None, f"cannot join the job at {{coordinator}} {coordinator}: "
                           f"{str(e).splitlines()[0] if str(e) else type(e).__name__}",
                           settings=("coordinator",)) from None


def global_batch(local: np.ndarray, mesh: Mesh):
    """This process's share of a batch, as one global array split over the mesh's devices.

    One process: :func:`shard_batch`. With ``jax.distributed``, each process
    passes its own rows; the global batch is their concatenation in process
    order.
    """
    if jax.process_count() == 1:
        return shard_batch(local, mesh)
    spec = P("data", *([None] * (np.ndim(local) - 1)))
    return jax.make_array_from_process_local_data(NamedSharding(mesh, spec), np.asarray(local))


def pad_to(x: np.ndarray, multiple: int, axis: int = 0) -> np.ndarray:
    """Repeats the last entry along ``axis`` until its length is a multiple."""
    extra = (-x.shape[axis]) % multiple
    if not extra:
        return x
    last = np.take(x, [-1] * extra, axis=axis)
    return np.concatenate([x, last], axis=axis)


def fuse_sharded(params, sources, *, strategy: str = "l1", mesh: Mesh | None = None):
    """Fuses a batch of pairs with the batch split over all devices.

    Args:
      sources: ``(k, N, H, W, 1)``; every fusion is independent per image.

    Returns:
      ``(N, H, W, 1)`` NumPy array, equal to :func:`jaxfuse.fusion.fuse`.
    """
    mesh = mesh or data_mesh()
    sources = np.asarray(sources, np.float32)
    n = sources.shape[1]
    padded = pad_to(sources, mesh.size, axis=1)
    out = fuse(replicate(params, mesh), shard_batch(padded, mesh, axis=1), strategy=strategy)
    return np.asarray(out)[:n]


def sharded_train_step(train_step, mesh: Mesh | None = None):
    """Wraps a train step from :func:`jaxfuse.training.make_train_step` for data parallelism.

    Returns ``step(state, images) -> (state, terms)`` where ``images``
    ``(B, H, W, 1)`` is split over the devices (B a multiple of their count)
    and the state stays replicated. The loss is the mean over the whole
    batch, so results equal the single-device step up to float rounding.
    """
    mesh = mesh or data_mesh()

    def step(state, images):
        if images.shape[0] % mesh.size:
            raise ValueError(f"batch {images.shape[0]} is not a multiple of {mesh.size} devices")
        return train_step(replicate(state, mesh), shard_batch(jnp.asarray(images), mesh))

    return step
