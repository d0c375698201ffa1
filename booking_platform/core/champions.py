"""Which model was champion on a date, and which trained model may take the `champion` alias.

Every model the promotion gate lets through is registered with the as-of date it was trained on
(arrivals before that date; the `as_of` tag). Those versions form a timeline: the model that was
champion as of T is the newest one trained as of a date not after T, so a run as of T (a
backfill, a rerun, a run on another worker) scores with what the platform would have used that
day and never with a model that saw later arrivals. The alias itself only ever moves forward in
training time: a model trained on older data than the current champion's is kept in the registry
for the dates it belongs to, never made champion. A person may still move the alias back by hand
(a rollback); versions trained after the alias holder are then out of the timeline, so scoring
follows the person, not the newest version.

Pure functions over (version, as-of) pairs: the registry (core/registry.py), the promotion gate
(core/gate.py), the backtest and the Dagster assets all ask these, on every profile.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class TrainedVersion:
    """A registered model version and the as-of date its training data ends at (excluded)."""

    version: str
    as_of: date


def trained_on_newer_data(candidate_as_of: date, champion_as_of: date | None) -> bool:
    """True when the candidate saw arrivals the champion did not: the one condition under which
    a candidate may replace a champion (None: there is no champion yet)."""
    return champion_as_of is None or candidate_as_of > champion_as_of


def champion_as_of(
    versions: Iterable[TrainedVersion], as_of: date, alias_holder: TrainedVersion | None
) -> TrainedVersion | None:
    """The version that was champion as of `as_of`, or None when no model was trained by then.

    `versions`: the registered versions with their training dates; `alias_holder`: the version
    behind `champion` now. On or after the alias holder's training date it is the alias holder;
    before it, the newest version trained as of a date not after `as_of` (the later registration
    on a tie).
    """
    if alias_holder is not None and alias_holder.as_of <= as_of:
        return alias_holder
    timeline = [
        v
        for v in versions
        if v.as_of <= as_of and (alias_holder is None or v.as_of < alias_holder.as_of)
    ]
    return max(timeline, key=lambda v: (v.as_of, int(v.version)), default=None)
