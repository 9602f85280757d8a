"""The wheel: it carries every package, the shipped checkpoints and the ``jaxfuse`` command.

The wheel is built from a copy of the source files (``pip wheel --no-deps
--no-build-isolation``, a few seconds, nothing downloaded), so the checkout is
not touched; it is unpacked, not installed, and the shipped checkpoint is
looked up in it the way an installed jaxfuse does.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO


def _copy_sources(dst: Path) -> None:
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, dst / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    shutil.copytree(REPO / "jaxfuse", dst / "jaxfuse", ignore=skip)
    shutil.copytree(REPO / "checkpoints", dst / "checkpoints", ignore=skip)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    dist = tmp_path_factory.mktemp("dist")
    _copy_sources(src)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "--no-index", "-q", "-w", str(dist), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Package would be ignored" not in r.stderr, r.stderr
    (whl,) = dist.glob("jaxfuse-*.whl")
    return whl


def _names(whl: Path) -> set[str]:
    with zipfile.ZipFile(whl) as z:
        return set(z.namelist())


def test_wheel_carries_the_shipped_checkpoints(wheel):
    names = _names(wheel)
    files = [p for p in (REPO / "checkpoints").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert files
    for p in files:
        assert f"jaxfuse/_checkpoints/{p.relative_to(REPO / 'checkpoints').as_posix()}" in names, p
    assert "jaxfuse/_checkpoints/res2netfuse/2000/params/manifest.ocdbt" in names


def test_wheel_carries_every_package_and_module(wheel):
    names = _names(wheel)
    missing = sorted({p.parent.relative_to(REPO).as_posix().replace("/", ".")
                      for p in (REPO / "jaxfuse").rglob("*.py")
                      if "__pycache__" not in p.parts and p.relative_to(REPO).as_posix() not in names})
    assert not missing, f"packages missing from [tool.setuptools] packages in pyproject.toml: {missing}"
    # the kernels' source, built on first use from the installed package
    assert "jaxfuse/native/onednn_conv.cc" in names
    assert not any(n.startswith(("tests/", "checkpoints/", "train.py", "fuse.py")) for n in names)


def test_wheel_declares_the_console_command(wheel):
    with zipfile.ZipFile(wheel) as z:
        (ep,) = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
        cfg = configparser.ConfigParser()
        cfg.read_string(z.read(ep).decode())
    assert dict(cfg["console_scripts"]) == {"jaxfuse": "jaxfuse.commands:main"}


def test_unpacked_wheel_finds_its_shipped_checkpoint(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    # -S: no site-packages, so only the unpacked wheel is importable (assets needs no dependency)
    code = ("import jaxfuse.assets as a, jaxfuse.commands as c; print(a.shipped_checkpoint()); "
            "print(a.shipped_models()); print(c.__file__)")
    r = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60, env={"PYTHONPATH": str(site)})
    assert r.returncode == 0, r.stderr
    ckpt, models, module = r.stdout.splitlines()
    assert Path(ckpt) == site / "jaxfuse" / "_checkpoints" / "res2netfuse"
    assert models == "['fusiongan', 'res2netfuse', 'res2netfuse_many']" and Path(module).is_relative_to(site)
    assert (Path(ckpt) / "2000" / "meta" / "metadata").is_file()
