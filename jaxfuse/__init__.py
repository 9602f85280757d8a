"""jaxfuse: Res2NetFuse infrared/visible image fusion in JAX and Flax."""

from jaxfuse import allocator as _allocator

_allocator.configure()  # before JAX starts its threads; see jaxfuse.allocator

__version__ = "0.1.0"
