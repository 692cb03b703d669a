"""Run this machine's Debian PyTorch on OpenBLAS instead of the reference BLAS, without installing anything.

Debian's ``python3-torch`` links ``libblas.so.3``; with no BLAS alternative installed that is the reference
(netlib) BLAS, measured here at 2-6 GFLOP/s, 20x slower than OpenBLAS. ``ensure_openblas()`` fetches Debian's
``libopenblas0-pthread`` with ``apt-get download``, unpacks it into ``<repo>/.cache/openblas`` (``dpkg-deb -x``, no
root needed) and re-executes the calling script with it first on ``LD_LIBRARY_PATH``. Call it before importing
torch. Shared by ``tools/pretrain/pretrain.py`` and ``tools/reference/speed_reference.py`` so that pretraining and
the speed comparison both measure PyTorch at its real speed. ``PEFTJS_SYSTEM_BLAS=1`` keeps the system BLAS.
"""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), ".cache", "openblas")
LIB_DIR = os.path.join(ROOT, "root", "usr", "lib", "x86_64-linux-gnu", "openblas-pthread")


def ensure_openblas(tag: str) -> None:
    """Re-exec the current script on OpenBLAS (one thread unless the caller set otherwise); no-op once done."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    if os.environ.get("PEFTJS_SYSTEM_BLAS") or os.environ.get("PEFTJS_BLAS_DIR"):
        return
    if not os.path.exists(os.path.join(LIB_DIR, "libblas.so.3")):
        try:
            os.makedirs(ROOT, exist_ok=True)
            subprocess.run(["apt-get", "download", "libopenblas0-pthread"], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deb = sorted(f for f in os.listdir(ROOT) if f.endswith(".deb"))[-1]
            subprocess.run(["dpkg-deb", "-x", deb, "root"], cwd=ROOT, check=True)
        except (OSError, subprocess.CalledProcessError, IndexError) as e:
            print(f"[{tag}] could not fetch OpenBLAS ({e}); using the system BLAS", file=sys.stderr, flush=True)
            return
    env = dict(os.environ, PEFTJS_BLAS_DIR=LIB_DIR)
    env["LD_LIBRARY_PATH"] = LIB_DIR + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def blas_in_use() -> str:
    """A label for reports: which BLAS this process runs on."""
    if os.environ.get("PEFTJS_BLAS_DIR"):
        return "OpenBLAS 0.3.21 (Debian libopenblas0-pthread, unpacked in .cache/openblas)"
    return "system libblas.so.3"


def openblas_runtime() -> dict:
    """OpenBLAS's own report, when it is the BLAS in use: the kernel core it picked for this CPU (its ISA path, e.g.
    "SkylakeX" = AVX-512) and the thread count in effect. Empty for other BLAS libraries."""
    import ctypes

    lib_dir = os.environ.get("PEFTJS_BLAS_DIR")
    candidates = [os.path.join(lib_dir, "libblas.so.3")] if lib_dir else []
    candidates += ["libopenblas.so.0", "libblas.so.3"]
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
            core = lib.openblas_get_corename
            threads = lib.openblas_get_num_threads
        except (OSError, AttributeError):
            continue
        core.restype = ctypes.c_char_p
        return {"blas_core": core().decode(), "blas_threads": threads()}
    return {}
