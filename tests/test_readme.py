"""The README's library example runs as written."""

import re

import numpy as np
import pytest

from conftest import REPO


def _library_snippet() -> str:
    """The first ```python block under the README's "## The library" heading."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    head = re.search(r"^## The library[ \t]*$", text, re.M)
    assert head, 'README.md has no "## The library" section'
    section = text[head.end():]
    nxt = re.search(r"^## ", section, re.M)
    section = section[:nxt.start()] if nxt else section
    block = re.search(r"^```python[ \t]*\n(.*?)^```", section, re.M | re.S)
    assert block, 'no ```python block under "## The library"'
    return block.group(1)


def test_library_snippet_runs(monkeypatch):
    code = _library_snippet()
    # Relative paths in the snippet (the shipped checkpoint) are the repository's.
    monkeypatch.chdir(REPO)
    if "checkpoints/res2netfuse" in code and not (REPO / "checkpoints" / "res2netfuse").is_dir():
        pytest.skip("the shipped checkpoint is absent")
    ns: dict = {"__name__": "readme_snippet"}
    exec(compile(code, "README.md (The library)", "exec"), ns)
    # What its comments promise, where it binds the names.
    if "fused" in ns and "x" in ns:
        assert tuple(ns["fused"].shape) == tuple(ns["x"].shape[1:])
    if "out" in ns:
        assert np.asarray(ns["out"]).dtype == np.uint8
    if "score" in ns:
        assert ns["score"] and all(np.isfinite(v) for v in ns["score"].values())
