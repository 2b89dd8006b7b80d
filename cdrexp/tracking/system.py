"""What machine and software a run ran on: logged as system_info.json with every run."""
from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
import socket
import sys
from pathlib import Path
from typing import Optional

import psutil

from .._git import git_or_none
from ..config import usable_cores

KEY_PACKAGES = ("cdrexp", "numpy", "pyarrow", "scipy", "hydra-core", "omegaconf", "mlflow",
                "psutil", "rich", "matplotlib", "zstandard", "dask", "distributed",
                "py-spy", "memray")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions(names=KEY_PACKAGES) -> dict[str, Optional[str]]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def numpy_info() -> dict:
    """numpy's version and build: BLAS/LAPACK library, SIMD extensions."""
    import numpy as np
    info: dict = {"version": np.__version__}
    try:
        cfg = np.show_config(mode="dicts")
    except Exception as exc:  # older numpy, or a build without the config module
        info["config_error"] = f"{type(exc).__name__}: {exc}"
        return info
    deps = cfg.get("Build Dependencies", {})
    info["blas"] = deps.get("blas")
    info["lapack"] = deps.get("lapack")
    info["simd"] = cfg.get("SIMD Extensions")
    info["show_config"] = cfg
    return info


def git_info(repo: Optional[Path] = None) -> dict:
    """Commit, branch and dirty flag of the project's source tree; all None when the
    package is not in a git work tree (installed from a wheel) or git is missing."""
    if repo is None:
        repo = Path(__file__).resolve().parents[2]
    top = git_or_none(repo, "rev-parse", "--show-toplevel")
    if not top:
        return {"commit": None, "branch": None, "dirty": None, "repo": None}
    status = git_or_none(repo, "status", "--porcelain", "--untracked-files=no")
    return {
        "commit": git_or_none(repo, "rev-parse", "HEAD"),
        "branch": git_or_none(repo, "rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": None if status is None else bool(status),
        "repo": top,
    }


def collect_system_info(repo: Optional[Path] = None) -> dict:
    vm = psutil.virtual_memory()
    freq = None
    try:
        f = psutil.cpu_freq()
        freq = f.max or f.current if f else None
    except (OSError, NotImplementedError, AttributeError):
        pass
    return {
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "cpu": {
            "model": cpu_model(),
            "logical_cores": psutil.cpu_count(logical=True),
            "physical_cores": psutil.cpu_count(logical=False),
            "usable_cores": usable_cores(),
            "max_mhz": freq,
        },
        "memory": {"total_bytes": vm.total, "available_bytes": vm.available},
        "os": {"system": platform.system(), "release": platform.release(),
               "platform": platform.platform(), "machine": platform.machine()},
        "python": {"version": platform.python_version(),
                   "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "numpy": numpy_info(),
        "packages": package_versions(),
        "git": git_info(repo),
    }
