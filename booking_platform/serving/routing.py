"""Champion/challenger routing by a stable hash of the routing key.

blake2b, not Python's `hash` (salted per process): every worker and every restart sends the
same key to the same arm.
"""

from __future__ import annotations

from hashlib import blake2b

_BUCKETS = float(1 << 64)


def bucket(key: str) -> float:
    """The key's position in [0, 1), uniform over keys and the same in every process."""
    return int.from_bytes(blake2b(key.encode(), digest_size=8).digest(), "big") / _BUCKETS


def goes_to_challenger(key: str, challenger_share: float) -> bool:
    return bucket(key) < challenger_share
