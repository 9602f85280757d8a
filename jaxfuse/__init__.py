"""jaxfuse: Res2NetFuse infrared/visible image fusion in JAX and Flax."""

import os as _os

if _os.environ.get("JAXFUSE_MALLOC", "").lower() == "on":  # before JAX starts; see jaxfuse.allocator
    from jaxfuse import allocator as _allocator

    _allocator.configure()

__version__ = "0.1.0"
