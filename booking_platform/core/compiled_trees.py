"""A model's trees compiled to machine code (lleaves, on LLVM): what the service scores with, and
batch scoring and `predict` too once the champion was compiled (CancellationModel.scores).

LightGBM's own `predict` took 12.6 ms of one core for 1,000 bookings through 250 trees, half of
a request's CPU and on its own a ceiling of ~150k rows/s on two cores before any parsing; the
same trees compiled take 2.3 ms and give the same probabilities (|diff| ~ 4e-16; test_fast_path
holds them to 1e-12 against batch scoring). Compiling a 250-tree model takes ~18 s, so the
object code is kept on disk per model and host CPU: one worker compiles while the others wait
on a file lock, then load it in ~10 ms, as does every later start.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import lightgbm as lgb
import lleaves
import llvmlite.binding as llvm

log = logging.getLogger(__name__)


def _cache_key(text: str) -> str:
    # the object code is specific to the model, the compiler and the CPU it was built for
    target = [version("lleaves"), version("llvmlite"), llvm.get_host_cpu_name()]
    target.append(llvm.get_host_cpu_features().flatten())
    return hashlib.sha256("\n".join([*target, text]).encode()).hexdigest()[:32]


def compiled_trees(booster: lgb.Booster, cache_dir: Path) -> lleaves.Model | None:
    """The booster's trees from `cache_dir` when they were compiled before (by the service),
    else None: batch scoring does not pay the compilation for a model it scores once."""
    text = booster.model_to_string()
    if not (cache_dir / f"{_cache_key(text)}.o").exists():
        return None
    return compile_trees(booster, cache_dir, text=text)


def compile_trees(
    booster: lgb.Booster, cache_dir: Path, name: str = "model", text: str | None = None
) -> lleaves.Model:
    """The booster's trees as a native function, from `cache_dir` when compiled before; what it
    does is logged under `name`. `text`: the booster's model_to_string(), when at hand."""
    text = text or booster.model_to_string()
    key = _cache_key(text)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = cache_dir / f"{key}.o"
    with tempfile.TemporaryDirectory() as scratch:
        model_file = Path(scratch) / "model.txt"  # lleaves reads the model from a file
        model_file.write_text(text)
        trees = lleaves.Model(model_file=str(model_file))
        with (cache_dir / f"{key}.lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the file closes
            except BlockingIOError:
                log.info("%s: waiting for another process compiling its trees", name)
                fcntl.flock(lock, fcntl.LOCK_EX)
            if cached.exists():
                trees.compile(cache=str(cached))
                log.info("%s: compiled trees found in %s", name, cached)
            else:
                log.info("compiling %s's trees to machine code (once per model and CPU)", name)
                started = time.monotonic()
                # written aside and renamed: a crash mid-write must not leave a cache to load
                partial = cache_dir / f"{key}.{os.getpid()}.partial"
                trees.compile(cache=str(partial))
                partial.replace(cached)
                log.info(
                    "compiled %s in %.1f s, kept in %s", name, time.monotonic() - started, cached
                )
    return trees
