"""jaxfuse's oneDNN convolution kernels as a library: found, built with this machine's compiler, loaded.

:mod:`jaxfuse.conv_native` calls them (and names :func:`available` and the
other queries of this module as its own).

    pip install 'jaxfuse[cpu-kernels]'     # oneDNN 3.2, CPU only, GNU OpenMP (onednn-cpu-gomp)
    python -m jaxfuse.conv_build           # optional: jaxfuse builds them on first use anyway

One C++ file shipped in the package, ``jaxfuse/native/onednn_conv.cc``, compiled
with ``$CXX`` (else ``g++``; C++17 and OpenMP) against

* the XLA FFI headers that jaxlib ships (``jax.ffi.include_dir()``), and
* oneDNN: by default the one the ``onednn-cpu-gomp`` (library) and
  ``onednn-devel-cpu-gomp`` (headers) wheels of the ``cpu-kernels`` extra put
  under the environment's prefix; ``--dnnl-root`` (or ``$DNNL_ROOT``) names
  another installation with ``include/oneapi/dnnl/dnnl.hpp`` and
  ``lib/libdnnl.so*``. It must be an OpenMP (``libgomp``) build, as those
  wheels are: the kernels set the thread count of the OpenMP runtime.

The library goes to a cache folder named after everything it depends on
(the source, jaxlib's version, oneDNN's location): ``$JAXFUSE_KERNEL_CACHE``,
else ``$XDG_CACHE_HOME/jaxfuse/kernels`` (``~/.cache/jaxfuse/kernels``). It is
linked with an rpath to oneDNN's folder, so nothing needs to be on
``LD_LIBRARY_PATH``; another environment or another jaxlib builds its own.
The build takes about 10 s.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import threading
import warnings
from importlib import metadata
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "native" / "onednn_conv.cc"
LIB_NAME = "libjaxfuse_onednn.so"
OPS = ("fwd", "bwd_data", "bwd_weights")  # the library's FFI targets jaxfuse_onednn_conv_<op>
WHEELS = ("onednn-cpu-gomp==2023.2.0", "onednn-devel-cpu-gomp==2023.2.0")  # the cpu-kernels extra


class BuildError(Exception):
    """The kernels cannot be built here; the message says why, in one line."""


def _from_wheels() -> tuple[Path, Path] | None:
    """(include dir, lib file) from the onednn-*-cpu-gomp wheels, if installed."""
    include = lib = None
    for dist_name in ("onednn-devel-cpu-gomp", "onednn-cpu-gomp"):
        try:
            dist = metadata.distribution(dist_name)
        except metadata.PackageNotFoundError:
            continue
        for f in dist.files or ():
            p = f.as_posix()
            if p.endswith("include/oneapi/dnnl/dnnl.hpp"):
                include = Path(dist.locate_file(f)).resolve().parents[2]
            elif p.rsplit("/", 1)[-1] == "libdnnl.so.3":
                lib = Path(dist.locate_file(f)).resolve()
    return (include, lib) if include and lib else None


def _from_root(root: Path) -> tuple[Path, Path]:
    include = root / "include"
    libs = sorted((root / "lib").glob("libdnnl.so*")) + sorted((root / "lib64").glob("libdnnl.so*"))
    if not (include / "oneapi" / "dnnl" / "dnnl.hpp").is_file() or not libs:
        raise BuildError(f"no oneDNN under {root} (want include/oneapi/dnnl/dnnl.hpp and lib/libdnnl.so*)")
    return include, libs[0]


def find_dnnl(root: str | None = None) -> tuple[Path, Path]:
    """(include dir, libdnnl file): ``root``, ``$DNNL_ROOT`` or the cpu-kernels extra's wheels."""
    root = root or os.environ.get("DNNL_ROOT")
    if root:
        return _from_root(Path(root))
    found = _from_wheels()
    if found is None:
        raise BuildError("oneDNN is not installed: pip install 'jaxfuse[cpu-kernels]' "
                         f"(or {' '.join(WHEELS)}), or pass --dnnl-root")
    return found


def dnnl_installed() -> bool:
    """Whether a oneDNN to build against is there (``$DNNL_ROOT`` or the extra's wheels)."""
    return bool(os.environ.get("DNNL_ROOT")) or _from_wheels() is not None


def _check_openmp(include: Path) -> None:
    config = (include / "oneapi" / "dnnl" / "dnnl_config.h").read_text()
    if "#define DNNL_CPU_RUNTIME DNNL_RUNTIME_OMP" not in config:
        raise BuildError(f"{include}: this oneDNN is not an OpenMP build (DNNL_CPU_RUNTIME); "
                         "use the onednn-cpu-gomp wheels")


def cache_dir() -> Path:
    env = os.environ.get("JAXFUSE_KERNEL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxfuse" / "kernels"


def default_output(dnnl_root: str | None = None) -> Path:
    """Where the library for this source, jaxlib and oneDNN goes (and is looked for)."""
    import jaxlib
    _, lib = find_dnnl(dnnl_root)
    key = hashlib.sha256(SOURCE.read_bytes() + f"\0{jaxlib.__version__}\0{lib}".encode())
    return cache_dir() / key.hexdigest()[:16] / LIB_NAME


def command(cxx: str, include: Path, lib: Path, out: Path) -> list[str]:
    import jax  # the FFI headers ship with jaxlib

    return [cxx, "-O2", "-std=c++17", "-shared", "-fPIC", "-fvisibility=hidden", "-fopenmp",
            "-Wno-attributes", "-Wno-return-type",
            f"-I{jax.ffi.include_dir()}", f"-I{include}", str(SOURCE),
            f"-L{lib.parent}", f"-l:{lib.name}", f"-Wl,-rpath,{lib.parent}", "-o", str(out)]


def build(out: Path | None = None, dnnl_root: str | None = None, cxx: str | None = None,
          log=None) -> Path:
    """Compiles the kernels to ``out`` (default :func:`default_output`); returns that path.

    Raises:
      BuildError: no compiler, no oneDNN, a oneDNN that is not an OpenMP build,
        or the compiler failed (its last line of output in the message).
    """
    cxx = cxx or os.environ.get("CXX") or "g++"
    if shutil.which(cxx) is None:
        raise BuildError(f"no C++ compiler {cxx!r} on PATH (set $CXX)")
    include, lib = find_dnnl(dnnl_root)
    _check_openmp(include)
    out = Path(out) if out is not None else default_output(dnnl_root)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    cmd = command(cxx, include, lib, tmp)
    if log is not None:
        log(shlex.join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        last = (r.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BuildError(f"{cxx} failed to build {SOURCE.name}: {last}")
    tmp.replace(out)  # atomically: a process that has the old one loaded keeps it
    return out


# ---------------------------------------------------------------------------
# finding, building (on first use) and loading the library

_lock = threading.Lock()
_lib: dict = {"tried": False, "lib": None, "reason": "not loaded yet"}


def library_path() -> Path | None:
    """The compiled kernels' file: ``$JAXFUSE_ONEDNN_LIB``, else the build cache's file for this
    source, jaxlib and oneDNN (:func:`jaxfuse.default_output`); None when no oneDNN is
    installed to build against."""
    env = os.environ.get("JAXFUSE_ONEDNN_LIB")
    if env:
        return Path(env)
    if not dnnl_installed():
        return None
    return default_output()


def _load() -> None:
    if os.environ.get("JAXFUSE_NATIVE_CONV", "1") == "0":
        _lib["reason"] = "switched off by JAXFUSE_NATIVE_CONV=0"
        return
    try:
        path = library_path()
        if path is None:
            _lib["reason"] = ("the oneDNN kernels are not installed (pip install "
                                "'jaxfuse[cpu-kernels]')")
            return
        if not path.is_file() and not os.environ.get("JAXFUSE_ONEDNN_LIB"):
            print("jaxfuse: building the oneDNN convolution kernels (once per environment, "
                  "about 10 s)", file=sys.stderr, flush=True)
            build(path)
    except BuildError as e:
        _lib["reason"] = f"the oneDNN kernels could not be built: {e}"
        warnings.warn(f"jaxfuse: {_lib['reason']}; convolutions use XLA", stacklevel=3)
        return
    if not path.is_file():
        _lib["reason"] = f"the oneDNN kernels are not at {path} ($JAXFUSE_ONEDNN_LIB)"
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import jax
    try:
        lib = ctypes.CDLL(str(path))
        for name in OPS:
            sym = f"jaxfuse_onednn_conv_{name}"
            jax.ffi.register_ffi_target(sym, jax.ffi.pycapsule(getattr(lib, sym)), platform="cpu")
        lib.jaxfuse_onednn_version.restype = ctypes.c_char_p
        lib.jaxfuse_onednn_last_threads.restype = ctypes.c_int
    except (OSError, AttributeError) as e:
        _lib["reason"] = f"the oneDNN kernels at {path} could not be loaded: {e}"
        return
    _lib["lib"] = lib
    _lib["reason"] = ""


def available() -> bool:
    """Whether the kernels are loaded (loading, and if need be building, them on the first call)."""
    with _lock:
        if not _lib["tried"]:
            _lib["tried"] = True
            _load()
    return _lib["lib"] is not None


def unavailable_reason() -> str:
    """Why :func:`available` is False ('' when it is True)."""
    available()
    return _lib["reason"]


def onednn_version() -> str | None:
    """The loaded oneDNN's version, ``"major.minor.patch"``, or None."""
    return _lib["lib"].jaxfuse_onednn_version().decode() if available() else None


def last_call_threads() -> int:
    """The OpenMP thread count the most recent native call ran with (0: none yet)."""
    return int(_lib["lib"].jaxfuse_onednn_last_threads()) if available() else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jaxfuse.conv_build",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=None, help="library file (default: the cache)")
    ap.add_argument("--dnnl-root", default=None, help="a oneDNN installation (default: the wheels)")
    ap.add_argument("--cxx", default=None, help="C++ compiler (default $CXX, else g++)")
    args = ap.parse_args(argv)
    try:
        out = build(args.out, args.dnnl_root, args.cxx, log=print)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"built {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
