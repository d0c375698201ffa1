"""A PostgreSQL database of a test's own on the machine's server, dropped when the test ends."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

# the server every machine of the project runs (trust authentication)
SERVER_URL = os.environ.get("BOOKING_PLATFORM_PG_URL", "postgresql://postgres@127.0.0.1:5432")


@contextmanager
def fresh_database(prefix: str = "bp_test") -> Iterator[str]:
    """Create a uniquely named database and yield its URL; drop it (and its sessions) after."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield f"{SERVER_URL}/{name}"
    finally:
        with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
