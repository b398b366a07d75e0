"""Engines, transactions and the schema: SQLite (WAL, writers that wait) by default, PostgreSQL the same way."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import JSON, BigInteger, Integer, String

from states.errors import BadInput, EnvironmentFailed

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
SCHEMA_REVISION = "20261201_2220"
"""The newest migration; a test checks it is Alembic's head, so commands skip loading Alembic (~0.5 s)."""


def absolute_url(url: str) -> str:
    """Resolve a relative SQLite path against the working directory, so a flow run elsewhere finds the same file."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not path.is_absolute():
            path = Path.cwd() / path
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # a new database's folder is private
        except OSError as exc:
            # The URL is well formed; the machine cannot hold the file there (a file in the way, no permission).
            why = exc.strerror or exc
            raise EnvironmentFailed(zh=f"无法创建数据库所在文件夹 {path.parent}：{why}",
                                    en=f"cannot create the database's folder {path.parent}: {why}") from exc
        parsed = parsed.set(database=str(path))
    return parsed.render_as_string(hide_password=False)


# Every statement keeps its rowcount: SQLAlchemy 2 drops it for INSERT … SELECT on PostgreSQL unless asked,
# and the sweep reports how many notices and moves each statement made.
ROWCOUNT = {"preserve_rowcount": True}


def make_engine(url: str, **kwargs: Any) -> Engine:
    try:
        url = absolute_url(url)
        backend = make_url(url).get_backend_name()
    except EnvironmentFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - any unparseable URL is the user's input
        raise BadInput(zh=f"CAMPAIGN_DATABASE_URL 不是数据库地址：{exc}", en=f"CAMPAIGN_DATABASE_URL is not a database URL: {exc}") from exc
    if backend == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 60}, execution_options=ROWCOUNT, **kwargs)
        _sqlite_writers_wait(engine)
        return engine
    try:
        return create_engine(url, pool_pre_ping=True, execution_options=ROWCOUNT, **kwargs)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        # An unknown dialect or a driver that is not installed: the URL names a database this install cannot use.
        raise BadInput(zh=f"CAMPAIGN_DATABASE_URL 指定的数据库（{backend}）本安装无法使用：{exc}",
                       en=f"CAMPAIGN_DATABASE_URL names no database this installation can use ({backend}): {exc}") from exc


def _sqlite_writers_wait(engine: Engine) -> None:
    """SQLAlchemy's recipe: the driver's lazy BEGIN off, `BEGIN IMMEDIATE` ourselves.

    A deferred transaction that reads, then writes, fails at once under WAL when another writer got there
    first; an immediate one waits for the busy timeout instead.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        dbapi_connection.create_function("popcount", 1, _popcount, deterministic=True)

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back everything on any error."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


def upgrade(engine: Engine) -> None:
    """Create or migrate the schema to the newest revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def ensure_schema(engine: Engine) -> None:
    """Every command creates the schema if it is missing: a cheap look first, Alembic only when needed."""
    if inspect(engine).has_table("alembic_version"):
        with engine.connect() as connection:
            current = {row[0] for row in connection.exec_driver_sql("SELECT version_num FROM alembic_version")}
        if current == {SCHEMA_REVISION}:
            return
    upgrade(engine)


def changed(result: Any) -> int:
    """Rows an UPDATE/INSERT statement changed (a CursorResult's rowcount; 0 when the driver does not say)."""
    count = getattr(result, "rowcount", 0)
    return int(count) if count and count > 0 else 0


def insert_ignoring_duplicates(engine_or_session: Engine | Session, table: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING for either dialect (notices keyed by their cause, done chunks)."""
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    if bind.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


class json_object(FunctionElement[Any]):  # noqa: N801 - reads as the SQL function it is
    """A JSON object built in SQL from key/value pairs: json_object on SQLite, json_build_object on PostgreSQL."""

    type = JSON()
    inherit_cache = True


@compiles(json_object)
def _json_object_sqlite(element: json_object, compiler: Any, **kw: Any) -> str:
    return f"json_object({compiler.process(element.clauses, **kw)})"


@compiles(json_object, "postgresql")
def _json_object_pg(element: json_object, compiler: Any, **kw: Any) -> str:
    return f"json_build_object({compiler.process(element.clauses, **kw)})"


class utc_text(FunctionElement[str]):  # noqa: N801 - reads as the SQL function it is
    """An instant column as text, the same on both dialects: 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC (SQLite keeps
    instants as exactly this text; PostgreSQL formats its timestamptz so, whatever the session's time zone)."""

    type = String()
    inherit_cache = True


@compiles(utc_text)
def _utc_text_sqlite(element: utc_text, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"


@compiles(utc_text, "postgresql")
def _utc_text_pg(element: utc_text, compiler: Any, **kw: Any) -> str:
    return f"to_char(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"


def _popcount(value: int | None) -> int | None:
    return None if value is None else int(value).bit_count()


class popcount(FunctionElement[int]):  # noqa: N801 - reads as the SQL function it is
    """The bits set in a BIGINT (a window's day mask): a function of each SQLite connection, bit_count on
    PostgreSQL."""

    type = BigInteger()
    inherit_cache = True


@compiles(popcount)
def _popcount_sqlite(element: popcount, compiler: Any, **kw: Any) -> str:
    return f"popcount({compiler.process(element.clauses, **kw)})"


@compiles(popcount, "postgresql")
def _popcount_pg(element: popcount, compiler: Any, **kw: Any) -> str:
    return f"bit_count(CAST({compiler.process(element.clauses, **kw)} AS BIT(64)))"


class day_offset(FunctionElement[int]):  # noqa: N801 - reads as the SQL function it is
    """Whole days from the second date to the first: `day_offset(date, lo)`, the same on both dialects."""

    type = Integer()
    inherit_cache = True


@compiles(day_offset)
def _day_offset_sqlite(element: day_offset, compiler: Any, **kw: Any) -> str:
    first, second = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(julianday({first}) - julianday({second}) AS INTEGER)"


@compiles(day_offset, "postgresql")
def _day_offset_pg(element: day_offset, compiler: Any, **kw: Any) -> str:
    first, second = (compiler.process(c, **kw) for c in element.clauses)
    return f"(CAST({first} AS DATE) - CAST({second} AS DATE))"
