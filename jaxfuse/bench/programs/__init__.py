"""Scripts the benchmark runs as fresh processes (``python path args``), not modules to import."""
