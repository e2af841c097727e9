"""Database engine setup and migrations.

SQLite (the default) runs in WAL mode with ``busy_timeout`` and foreign keys on; write
transactions start with ``BEGIN IMMEDIATE`` so two writers cannot both read the audit
head and fork the chain. PostgreSQL (``postgresql+psycopg://``) uses the same schema;
writers serialise on a transaction-scoped advisory lock (see ``audit.lock_chain``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from enforcer.errors import StoreError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: SQLite page cache per connection, in KiB (``PRAGMA cache_size``).
SQLITE_CACHE_KIB = 256
#: Execution option that makes the next transaction on a SQLite connection immediate.
WRITE_OPTION = "enforcer_write"


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) readable by this user only (0700) whatever
    the umask; a directory we create is never left wider."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    for d in missing:
        os.chmod(d, 0o700)
    return path


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it is missing; an existing file of ours
    that others may read is narrowed to 0600 (a database once created 0644)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        st = path.stat()
        if st.st_mode & 0o077 and st.st_uid == os.getuid():
            os.chmod(path, 0o600)
        return
    os.close(fd)
    os.chmod(path, 0o600)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the enforcer's connection settings for ``url``."""
    if not is_sqlite(url):
        return create_engine(url, pool_pre_ping=True, **kwargs)
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:" and \
            not parsed.database.startswith("file:"):
        # The database holds token hashes and the audit trail: 0600 in a 0700 directory
        # we create, whatever the umask. SQLite gives -wal and -shm the database's mode.
        db_file = Path(parsed.database)
        private_dir(db_file.parent)
        private_file(db_file)
        for extra in ("-wal", "-shm", "-journal"):
            side = db_file.with_name(db_file.name + extra)
            if side.exists():
                private_file(side)
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        # FULL: a commit is fsynced before it returns, so an acknowledged order survives
        # a power loss too (NORMAL in WAL mode survives a process crash, not an OS one).
        cur.execute("PRAGMA synchronous=FULL")
        # Each connection has its own page cache (SQLite's default: 2 MB), and the daemon
        # holds one connection per store thread: with 100,000 bans the caches alone were
        # ~50 MB of duplicated pages the OS caches anyway. A small one per connection
        # keeps the hot index pages (the many_bans benchmark: 206 -> 167 MB peak, the
        # reconcile cycle no slower).
        cur.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def make_sessionmakers(engine: Engine) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    """(read, write) session factories; the write one begins IMMEDIATE on SQLite."""
    read = sessionmaker(engine, expire_on_commit=False)
    write = sessionmaker(
        engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
    )
    return read, write


def _alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema at ``database_url`` up to ``revision`` (idempotent)."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            cfg = _alembic_config(database_url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except SQLAlchemyError as e:
        raise StoreError(f"database migration failed: {type(e).__name__}") from e
    finally:
        engine.dispose()
