"""Databases of the cluster profile on the PostgreSQL server, created when missing."""

import psycopg
from psycopg import sql


def _server(server_url: str) -> psycopg.Connection:
    # the maintenance database: CREATE/DROP DATABASE cannot run inside the target itself
    return psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True)


def ensure_database(server_url: str, name: str) -> bool:
    """Create database `name` unless it exists; True when it was created."""
    with _server(server_url) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if exists:
            return False
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_database(server_url: str, name: str) -> None:
    """Drop `name`, closing its remaining sessions (WITH FORCE, PostgreSQL 13+)."""
    with _server(server_url) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
