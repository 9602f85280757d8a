"""Build the oneDNN convolution extension: native/build/libjaxfuse_onednn.so.

    pip install onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0
    python native/build.py [--dnnl-root DIR] [--out FILE] [--cxx g++]

One C++ file, ``native/onednn_conv.cc``, compiled with the machine's C++
compiler (``$CXX``, else ``g++``) against

* the XLA FFI headers that jaxlib ships (``jax.ffi.include_dir()``), and
* oneDNN: by default the one the PyPI wheels ``onednn-cpu-gomp`` (the
  library) and ``onednn-devel-cpu-gomp`` (the headers) put under the
  environment's prefix; ``--dnnl-root`` (or ``$DNNL_ROOT``) names another
  installation with ``include/oneapi/dnnl/dnnl.hpp`` and ``lib/libdnnl.so*``.

oneDNN must be an OpenMP (GNU ``libgomp``) build, the kind these wheels are:
the extension sets the OpenMP thread count of the runtime oneDNN uses. The
library is linked with an rpath to oneDNN's directory, so nothing needs to be
on ``LD_LIBRARY_PATH``. :mod:`jaxfuse.conv_native` loads the result from its
default place (or from ``$JAXFUSE_ONEDNN_LIB``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "onednn_conv.cc"
DEFAULT_OUT = HERE / "build" / "libjaxfuse_onednn.so"


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
        raise SystemExit(f"no oneDNN under {root} (want include/oneapi/dnnl/dnnl.hpp and lib/libdnnl.so*)")
    return include, libs[0]


def find_dnnl(root: str | None) -> tuple[Path, Path]:
    root = root or os.environ.get("DNNL_ROOT")
    if root:
        return _from_root(Path(root))
    found = _from_wheels()
    if found is None:
        raise SystemExit("oneDNN not found: pip install onednn-cpu-gomp==2023.2.0 "
                         "onednn-devel-cpu-gomp==2023.2.0, or pass --dnnl-root")
    return found


def check_openmp(include: Path) -> None:
    config = (include / "oneapi" / "dnnl" / "dnnl_config.h").read_text()
    if "#define DNNL_CPU_RUNTIME DNNL_RUNTIME_OMP" not in config:
        raise SystemExit(f"{include}: this oneDNN is not an OpenMP build (DNNL_CPU_RUNTIME); "
                         "use the onednn-cpu-gomp wheels")


def command(cxx: str, include: Path, lib: Path, out: Path) -> list[str]:
    import jax  # the FFI headers ship with jaxlib

    return [cxx, "-O2", "-std=c++17", "-shared", "-fPIC", "-fvisibility=hidden", "-fopenmp",
            "-Wno-attributes", "-Wno-return-type",
            f"-I{jax.ffi.include_dir()}", f"-I{include}", str(SOURCE),
            f"-L{lib.parent}", f"-l:{lib.name}", f"-Wl,-rpath,{lib.parent}", "-o", str(out)]


def build(out: Path = DEFAULT_OUT, dnnl_root: str | None = None, cxx: str | None = None,
          verbose: bool = True) -> Path:
    cxx = cxx or os.environ.get("CXX") or "g++"
    if shutil.which(cxx) is None:
        raise SystemExit(f"C++ compiler {cxx!r} not found")
    include, lib = find_dnnl(dnnl_root)
    check_openmp(include)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    cmd = command(cxx, include, lib, tmp)
    if verbose:
        print(shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    tmp.replace(out)  # atomically: a process that has the old one loaded keeps it
    if verbose:
        print(f"built {out}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--dnnl-root", default=None)
    ap.add_argument("--cxx", default=None)
    args = ap.parse_args(argv)
    build(args.out, args.dnnl_root, args.cxx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
