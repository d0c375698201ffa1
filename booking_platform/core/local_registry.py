"""The registry of an embedded MLflow store (sqlite file, artifacts on local disk), read without
importing MLflow: for the commands a person types.

Importing MLflow and opening its sqlite store through SQLAlchemy and Alembic cost `predict` and
`predictions` most of their time (docs/measurements.md, issue 15 point 4) for what is a few rows
of four tables and one pickle. The answers are the registry's own: the same version rows and
tags core/registry.py reads through MlflowClient (test_cli.py holds the two to equal answers
and identical probabilities), fed to the same core/champions.py rules. A tracking server
(the cluster profile) has no local copy: callers use core/registry.py there (`sqlite_store`
returns None).
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from booking_platform.core.champions import TrainedVersion, champion_as_of

if TYPE_CHECKING:  # imports LightGBM and scikit-learn: only loading a model needs them
    from booking_platform.core.training import CancellationModel

# core/registry.py takes these from here: the two modules must name the same tag and alias
AS_OF_TAG = "as_of"  # on runs and versions: the as-of date the model was trained as of
CHAMPION = "champion"
PYFUNC_FILE = "python_model.pkl"  # where MLflow's pyfunc flavour keeps the pickled wrapper


@dataclass(frozen=True)
class VersionEntry:
    version: str
    run_id: str
    storage_location: str  # the logged model's artifact folder, as MLflow recorded it


def sqlite_store(tracking_uri: str) -> Path | None:
    """The sqlite file behind a `sqlite:///` tracking URI when it exists, else None."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    path = Path(tracking_uri.removeprefix("sqlite:///"))
    return path if path.is_file() else None


@contextmanager
def _read(store: Path) -> Iterator[sqlite3.Connection]:
    # read-only: a command must never create or migrate the store MLflow owns
    with closing(sqlite3.connect(f"{store.as_uri()}?mode=ro", uri=True)) as connection:
        yield connection


def _trained(
    connection: sqlite3.Connection, model_name: str, version: str
) -> TrainedVersion | None:
    """core/registry.trained_version: the version's own `as_of` tag, else its run's."""
    row = (
        connection.execute(
            "SELECT value FROM model_version_tags WHERE name = ? AND version = ? AND key = ?",
            [model_name, int(version), AS_OF_TAG],
        ).fetchone()
        or connection.execute(
            "SELECT t.value FROM model_versions v JOIN tags t ON t.run_uuid = v.run_id "
            "WHERE v.name = ? AND v.version = ? AND t.key = ?",
            [model_name, int(version), AS_OF_TAG],
        ).fetchone()
    )
    return None if row is None else TrainedVersion(version, date.fromisoformat(row[0]))


def _alias(connection: sqlite3.Connection, model_name: str, alias: str) -> str | None:
    row = connection.execute(
        "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
        [model_name, alias],
    ).fetchone()
    return None if row is None else str(row[0])


def champion_version_as_of(store: Path, model_name: str, as_of: date) -> TrainedVersion | None:
    """core/registry.champion_version_as_of, from the sqlite file."""
    with _read(store) as connection:
        versions = [
            str(v)
            for (v,) in connection.execute(
                "SELECT version FROM model_versions WHERE name = ?", [model_name]
            )
        ]
        trained = [t for v in versions if (t := _trained(connection, model_name, v)) is not None]
        holder = _alias(connection, model_name, CHAMPION)
        holder_trained = None if holder is None else _trained(connection, model_name, holder)
    return champion_as_of(trained, as_of, holder_trained)


def version_entry(store: Path, model_name: str, version: str) -> VersionEntry | None:
    with _read(store) as connection:
        row = connection.execute(
            "SELECT version, run_id, storage_location FROM model_versions "
            "WHERE name = ? AND version = ?",
            [model_name, int(version)],
        ).fetchone()
    return None if row is None else VersionEntry(str(row[0]), row[1] or "", row[2] or "")


def alias_entry(store: Path, model_name: str, alias: str = CHAMPION) -> VersionEntry | None:
    """The version behind `alias`, or None when the alias does not exist."""
    with _read(store) as connection:
        version = _alias(connection, model_name, alias)
    return None if version is None else version_entry(store, model_name, version)


class _Wrapper:
    """Stands in for the pyfunc wrapper's classes (core/registry.CancellationPyfunc and the
    MLflow objects it holds), whose modules import MLflow; only its `model` attribute, our own
    CancellationModel unpickled by its real class, is read."""

    def __setstate__(self, state: object) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)


class _ModelUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type:
        if module == "booking_platform.core.registry" or module.split(".")[0] == "mlflow":
            return _Wrapper
        return super().find_class(module, name)


def local_model_file(entry: VersionEntry) -> Path | None:
    """The version's pickled pyfunc on local disk, or None (artifacts elsewhere, or missing)."""
    location = urlsplit(entry.storage_location)
    if location.scheme != "file":
        return None
    path = Path(unquote(location.path)) / PYFUNC_FILE
    return path if path.is_file() else None


def load_model(path: Path) -> CancellationModel:
    """The CancellationModel inside a logged pyfunc, unpickled without MLflow."""
    with path.open("rb") as handle:
        wrapper = _ModelUnpickler(handle).load()
    return wrapper.model


def champion_version(
    tracking_uri: str, artifact_root: Path, model_name: str, as_of: date
) -> TrainedVersion | None:
    """The version that was champion as of `as_of`: from the sqlite file when the store is one,
    else through MLflow (core/registry.py)."""
    store = sqlite_store(tracking_uri)
    if store is not None:
        return champion_version_as_of(store, model_name, as_of)
    from booking_platform.core import registry

    registry.use_store(tracking_uri, artifact_root)
    return registry.champion_version_as_of(model_name, as_of)


def load_champion(
    tracking_uri: str, artifact_root: Path, model_name: str, as_of: date | None = None
) -> tuple[str, CancellationModel] | None:
    """The model behind `champion` (or the one that was champion as of `as_of`) and its version;
    None when there is none. Read from disk when the store and the model's artifacts are local,
    else through MLflow."""
    store = sqlite_store(tracking_uri)
    if store is not None:
        if as_of is None:
            entry = alias_entry(store, model_name)
        else:
            chosen = champion_version_as_of(store, model_name, as_of)
            entry = chosen and version_entry(store, model_name, chosen.version)
        if entry is None:
            return None
        path = local_model_file(entry)
        if path is not None:
            return entry.version, load_model(path)
    from booking_platform.core import registry

    registry.use_store(tracking_uri, artifact_root)
    loaded = (
        registry.load_alias(model_name)
        if as_of is None
        else registry.load_champion_as_of(model_name, as_of)
    )
    return None if loaded is None else (loaded.version, loaded.model)
