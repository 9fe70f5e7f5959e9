"""Create the benchmark's PostgreSQL database when it does not exist yet (``--fresh``: drop
it first, for a benchmark that starts from an empty database)."""

import sys
from urllib.parse import urlparse

import psycopg

url = urlparse(sys.argv[1])
if url.scheme.startswith("postgres"):
    name = url.path.lstrip("/")
    admin = url._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        if "--fresh" in sys.argv[2:]:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')
            print(f"Base {name} créée.")
