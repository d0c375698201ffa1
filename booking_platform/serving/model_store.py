"""The models behind the registry aliases, reloaded in the background when an alias moves.

A model is loaded with its trees compiled (core/compiled_trees.py) before it can be swapped in.

A request reads `ModelStore.current` once: an immutable pair (champion, challenger) of fully
loaded models. The poller builds a new pair off to the side and swaps that one reference, so
no request ever sees a half-loaded model or a champion from one pair and a challenger from
another.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import lleaves
import numpy as np

from booking_platform.core import registry
from booking_platform.core.compiled_trees import compile_trees
from booking_platform.core.training import CancellationModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    alias: str
    version: str
    run_id: str
    model: CancellationModel
    trees: lleaves.Model  # model's booster, compiled
    loaded_at: float

    def score(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """Cancellation probabilities: the batch path's feature code, without pandas, the
        booster's trees compiled, on one thread (the service scales with worker processes), and
        the batch path's calibration (CancellationModel.calibrated)."""
        return self.model.scores(self.model.builder.encode(columns), self.trees, n_jobs=1)

    def describe(self) -> dict[str, object]:
        return {
            "version": self.version,
            "run_id": self.run_id,
            "threshold": self.model.threshold,
            "train_end": self.model.train_end,
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
        }


@dataclass(frozen=True)
class ServingModels:
    champion: LoadedModel | None = None
    challenger: LoadedModel | None = None


def _freeze_long_lived() -> None:
    """Move every object alive now (imports, MLflow, the loaded models: about 330k objects)
    out of the garbage collector's reach.

    A full collection walks all of them: 0.2 s with the GIL held, during which every request
    waits; requests allocate enough to trigger one every few seconds under load. Frozen, a full
    collection only walks what requests left behind. Unfreezing and collecting first frees a
    replaced model's cycles (one 0.2 s pause per alias move, not one every few seconds).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class ModelStore:
    """Polls the aliases every `poll_seconds`; loads a moved alias fully, then swaps."""

    def __init__(
        self,
        tracking_uri: str,
        artifact_root: Path,
        compiled_dir: Path,
        model_name: str,
        poll_seconds: float,
    ) -> None:
        self.tracking_uri, self.artifact_root = tracking_uri, artifact_root
        self.compiled_dir = compiled_dir
        self.model_name, self.poll_seconds = model_name, poll_seconds
        self.current = ServingModels()
        self.last_poll: float | None = None
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _resolve(self, alias: str, loaded: LoadedModel | None) -> LoadedModel | None:
        entry = registry.alias_version(self.model_name, alias)
        if entry is None:
            return None
        if loaded is not None and loaded.version == str(entry.version):
            return loaded
        started = time.monotonic()
        log.info("loading %s v%s of %s", alias, entry.version, self.model_name)
        fresh = registry.load_version(self.model_name, entry)
        trees = compile_trees(
            fresh.model.classifier.booster_, self.compiled_dir, f"{alias} v{fresh.version}"
        )
        log.info(
            "loaded %s v%s in %.1f s%s",
            alias,
            fresh.version,
            time.monotonic() - started,
            f" (replacing v{loaded.version})" if loaded else "",
        )
        return LoadedModel(alias, fresh.version, fresh.run_id, fresh.model, trees, time.time())

    def refresh(self) -> ServingModels:
        """One poll: both aliases looked up, any moved one loaded, then one swap."""
        registry.use_store(self.tracking_uri, self.artifact_root)
        before = self.current
        after = ServingModels(
            champion=self._resolve(registry.CHAMPION, before.champion),
            challenger=self._resolve(registry.CHALLENGER, before.challenger),
        )
        if after != before:
            self.current = after
            _freeze_long_lived()
        self.last_poll = time.time()
        return after

    def _poll_once(self) -> None:
        try:
            self.refresh()
            self.last_error = None
        except Exception as error:  # noqa: BLE001 - keep serving the models already loaded
            self.last_error = f"{type(error).__name__}: {error}"
            log.exception("registry poll failed; still serving the loaded models")

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self._poll_once()

    def start(self) -> None:
        """The first poll now, the next ones in the background.

        Called from the app's startup, which uvicorn finishes before the worker accepts a
        connection: with several workers, one still loading does not take requests (and answer
        503) while another already serves. A failed or empty first poll still lets it start:
        /health then says why it is not ready.
        """
        self._poll_once()
        self._thread = threading.Thread(target=self._poll, name="model-store", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
