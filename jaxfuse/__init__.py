"""jaxfuse: Res2NetFuse infrared/visible image fusion in JAX and Flax."""

__version__ = "0.1.0"
