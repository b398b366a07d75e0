"""`campaign db …`: the schema and the database as a whole — upgrade, the log's keyed chain and hardening, backup
and restore."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from cli import human
from cli.app import (
    App,
    cli,
    pass_app,
)
from states import audit, authority, counts, facts
from states.db import ensure_schema, make_engine, upgrade
from states.errors import BadInput, CampaignError, Refused
from states.models import Campaign, TransitionLog

ROLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class ToolFailed(CampaignError):
    """A database tool (pg_dump, pg_restore, SQLite's backup) failed: exit 3, the environment failed."""

    exit_code = 3


@cli.group()
def db() -> None:
    """The database: schema, the log's protection, backup and restore."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Create or migrate the schema (idempotent)."""
    engine = make_engine(app.settings.database_url)
    upgrade(engine)
    where = engine.url.render_as_string(hide_password=True)
    click.echo(human.say(app.locale, f"数据库结构已是最新（{where}）", f"schema is current ({where})"))


@db.command("reseal")
@pass_app
def db_reseal(app: App) -> None:
    """Key a chain sealed before seals were keyed: check it with the old digest, then append one keyed seal that
    vouches for it (nothing is rewritten)."""
    with Session(app.engine) as session, session.begin():
        head = audit.reseal(session, dt.datetime.now(dt.UTC), app.audit_key)
    app.anchor()
    seal, digest = (head.seal_id, head.digest) if head else ("-", "-")
    click.echo(human.say(app.locale, f"审计链已加密钥封印：最新封印 {seal} {digest}", f"audit chain keyed: head seal {seal} {digest}"))


@db.command("harden")
@click.option("--role", default=None, help="PostgreSQL: the service's role; it loses UPDATE, DELETE and TRUNCATE on the log")
@pass_app
def db_harden(app: App, role: str | None) -> None:
    """Leave the log and its seals append-only in the database itself: triggers refusing UPDATE and DELETE (renewed
    if someone dropped them) and, on PostgreSQL, those privileges revoked from PUBLIC and the service's role. Run it
    as the tables' owner; the service should run as another role, since an owner may drop triggers."""
    engine = app.engine
    dialect = engine.dialect.name
    if role is not None and (dialect != "postgresql" or not ROLE.match(role)):
        raise BadInput(zh="--role 只用于 PostgreSQL，取 PostgreSQL 角色名（字母、数字、_）",
                       en="--role takes a PostgreSQL role name (letters, digits, _), on PostgreSQL only")
    with engine.begin() as connection:
        for statement in audit.append_only_statements(dialect):
            connection.execute(text(statement))
        if dialect != "postgresql":
            click.echo(human.say(
                app.locale,
                f"触发器已就位：{'、'.join(audit.APPEND_ONLY_TABLES)} 拒绝 UPDATE 和 DELETE（SQLite 没有角色：以文件权限为界）",
                f"triggers in place: {', '.join(audit.APPEND_ONLY_TABLES)} refuse UPDATE and DELETE (SQLite has no "
                "roles: the file's permissions are the boundary)",
            ))
            return
        if role is not None and connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}) is None:
            raise BadInput(zh=f"没有 PostgreSQL 角色 {role!r}", en=f"no PostgreSQL role {role!r}")
        grantees = "PUBLIC" + (f', "{role}"' if role else "")
        tables = ", ".join(audit.APPEND_ONLY_TABLES)
        connection.exec_driver_sql(f"REVOKE UPDATE, DELETE, TRUNCATE ON {tables} FROM {grantees}")
        owner = connection.scalar(text("SELECT tableowner FROM pg_tables WHERE tablename = 'transition_log'"))
    click.echo(human.say(app.locale, f"触发器已就位，已收回 {grantees} 对 {tables} 的 UPDATE、DELETE、TRUNCATE 权限",
                         f"triggers in place and UPDATE, DELETE, TRUNCATE on {tables} revoked from {grantees}"))
    if role is not None and owner == role:
        click.echo(human.say(app.locale, f"campaign: 警告：{role} 是这些表的所有者，可以删除触发器：请以其他角色运行服务",
                             f"campaign: warning: {role} owns the tables and may drop the triggers: run the service as "
                             "another role"), err=True)


# -- backup and restore ------------------------------------------------------------------------------------------


def _sqlite_file(url: URL) -> Path | None:
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise BadInput(zh="内存数据库无可备份或恢复", en="an in-memory database has nothing to back up or restore")
    return Path(url.database)


def _private_temp(beside: Path) -> Path:
    """An empty 0600 file next to `beside` (same file system, so the final rename is atomic)."""
    beside.parent.mkdir(parents=True, exist_ok=True)
    temp = beside.parent / f".{beside.name}.{uuid.uuid4().hex}.tmp"
    os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return temp


@contextlib.contextmanager
def _removed_on_error(path: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
            leftover.unlink(missing_ok=True)
        raise


def _sqlite_copy(source: Path, target: Path, *, single_file: bool = True) -> None:
    """SQLite's online backup API in one step: one read transaction on the source, so the copy is one consistent
    moment however many writers run, and one write transaction on the target. A backup file is left a single file
    (no WAL beside it); a live database keeps its WAL mode."""
    try:
        with contextlib.closing(sqlite3.connect(source, timeout=60)) as src, \
                contextlib.closing(sqlite3.connect(target, timeout=60)) as dst:
            src.backup(dst)
            if single_file:
                dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise ToolFailed(zh=f"从 {source} 做 SQLite 备份失败：{exc}", en=f"SQLite backup from {source} failed: {exc}") from None


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq URL without the password (which would show in `ps`) and the environment carrying it."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(tool: list[str], env: dict[str, str]) -> None:
    if shutil.which(tool[0]) is None:
        raise ToolFailed(zh=f"找不到 {tool[0]}（请安装 PostgreSQL 客户端工具）", en=f"{tool[0]} not found (install the PostgreSQL client tools)")
    done = subprocess.run(tool, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        why = lines[0] if lines else f"exit {done.returncode}"
        raise ToolFailed(zh=f"{tool[0]} 运行失败：{why}", en=f"{tool[0]} failed: {why}")


@db.command("backup")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="replace FILE if it exists")
@pass_app
def db_backup(app: App, file: Path, force: bool) -> None:
    """A consistent copy of the database, taken while the service runs, into FILE (mode 0600): SQLite's online
    backup API, or `pg_dump -Fc` on PostgreSQL. Written to a temporary name and renamed: FILE is whole or absent."""
    if file.exists() and not force:
        raise Refused(zh=f"{file} 已存在：加 --force 才会替换", en=f"{file} exists: give --force to replace it")
    url = app.engine.url
    source = _sqlite_file(url)
    temp = _private_temp(file)
    with _removed_on_error(temp):
        if source is not None:
            _sqlite_copy(source, temp)
        else:
            target, env = _libpq(url)
            _run(["pg_dump", "--format=custom", f"--file={temp}", f"--dbname={target}"], env)
        os.chmod(temp, 0o600)
        with open(temp, "rb") as done:
            os.fsync(done.fileno())
        os.replace(temp, file)
    with app.read() as session:
        head = audit.head(session)
    seal = head.seal_id if head else "-"
    click.echo(human.say(app.locale, f"已备份到 {file}（审计链最新封印 {seal}）", f"backup written to {file} (audit head seal {seal})"))


def _log_entries(app: App) -> int:
    with app.read() as session:
        return session.scalar(select(func.count()).select_from(TransitionLog)) or 0


@db.command("restore")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="replace a database that already holds a log")
@pass_app
def db_restore(app: App, file: Path, force: bool) -> None:
    """Put a backup back. Refused without --force when the database already holds a log. SQLite: the backup is
    checked first (integrity, schema, its audit chain under this service's key), then copied into the live database
    in one transaction (readers see the old or the new, never a mix; a file rename would let a running process's
    WAL land on the wrong file). PostgreSQL: `pg_restore --clean --single-transaction`. The restored head is
    appended to the anchor file, marked `restore`."""
    if not file.is_file():
        raise BadInput(zh=f"找不到备份 {file}", en=f"backup {file} not found")
    url = app.engine.url
    if _log_entries(app) and not force:
        raise Refused(zh="数据库中已有日志：加 --force 才会用备份替换",
                      en="the database already holds a log: give --force to replace it with the backup")
    target = _sqlite_file(url)
    if target is not None:
        with open(file, "rb") as head:
            if head.read(16) != b"SQLite format 3\x00":
                raise BadInput(zh=f"{file} 不是 SQLite 数据库备份", en=f"{file} is not a SQLite database backup")
        staged = _private_temp(target)
        try:
            _sqlite_copy(file, staged)
            _check_sqlite_backup(app, staged, file)
            _sqlite_copy(staged, target, single_file=False)
        finally:
            for leftover in (staged, Path(f"{staged}-wal"), Path(f"{staged}-shm"), Path(f"{staged}-journal")):
                leftover.unlink(missing_ok=True)
    else:
        dbname, env = _libpq(url)
        _run(["pg_restore", "--clean", "--if-exists", "--single-transaction", "--no-owner", f"--dbname={dbname}",
              str(file)], env)
    with app.read() as session:
        verdict = audit.verify(session, app.audit_key)
    if verdict.broken:
        raise Refused(zh=f"已恢复，但审计链在区块 {verdict.broken} 处断裂：{verdict.why_zh}",
                      en=f"restored, but its audit chain is broken at block {verdict.broken}: {verdict.why}")
    app.anchor(note="restore")
    head = verdict.head
    seal = head.seal_id if head else "-"
    click.echo(human.say(app.locale, f"已从 {file} 恢复：{verdict.checked} 个封印块，最新封印 {seal}",
                         f"restored from {file}: {verdict.checked} sealed blocks, head seal {seal}"))


def _check_sqlite_backup(app: App, staged: Path, file: Path) -> None:
    try:
        with contextlib.closing(sqlite3.connect(staged)) as conn:
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise BadInput(zh=f"{file} 不是 SQLite 数据库：{exc}", en=f"{file} is not a SQLite database: {exc}") from None
    if ok != "ok" or "alembic_version" not in tables:
        raise BadInput(zh=f"{file} 不是活动数据库的备份（{'缺少数据库结构' if ok == 'ok' else ok}）",
                       en=f"{file} is not a campaign database backup ({'schema missing' if ok == 'ok' else ok})")
    engine = make_engine(f"sqlite:///{staged}")
    try:
        ensure_schema(engine)  # a backup from an older version is brought up to this one before it goes live
        with Session(engine) as session:
            verdict = audit.verify(session, app.audit_key)
    finally:
        engine.dispose()
    if verdict.broken:
        raise Refused(zh=f"{file}：审计链在区块 {verdict.broken} 处断裂（{verdict.why_zh}），未恢复",
                      en=f"{file}: its audit chain is broken at block {verdict.broken} ({verdict.why}); not restored")

@db.command("check-facts")
@click.option("--repair", is_flag=True, help="recompute every campaign's facts from the evidence")
@click.option("--actor", default=None, help="who repairs (required with --repair: the upper committee)")
@pass_app
def db_check_facts(app: App, repair: bool, actor: str | None) -> None:
    """Recompute the facts kept at import from the evidence, and the members per state from the progress rows, and
    compare; exit 1 when they differ (unrepaired)."""
    with app.read() as session:
        found = facts.differences(session)
        miscounted = {
            key: wrong for key in session.scalars(select(Campaign.key)) if (wrong := counts.differences(session, key))
        }
    for key, scope, rows in found:
        whose = {"member": "党员", "branch": "党支部"}.get(scope, scope)
        click.echo(human.say(app.locale, f"{key}：{whose}统计数据有 {rows} 行与原始记录不符",
                             f"{key}: {rows} {scope} facts rows differ from the evidence"), err=True)
    for key, wrong in miscounted.items():
        click.echo(human.say(app.locale, f"{key}：各状态人数与进度记录不符：{'；'.join(wrong)}",
                             f"{key}: counts per state differ from the progress rows: {'; '.join(wrong)}"), err=True)
    if not found and not miscounted:
        click.echo(human.say(app.locale, "统计数据与原始记录一致", "facts agree with the evidence"))
        return
    if not repair:
        sys.exit(1)
    if not actor:
        raise BadInput(zh="--repair 须同时给出 --actor（由谁修复）", en="--repair needs --actor (who repairs)")
    at = app.at(None)
    with app.write(at) as session:
        authority.leader(session, actor, zh="修复统计数据", en="repair the facts")
        facts.repair(session)
        for key in miscounted:
            counts.recount(session, key)
        audit.log(
            session, campaign_key="", member_id=None, branch_id=None, from_state=None, to_state=None,
            cause="facts_repair", actor=actor,
            reason="; ".join([f"{key} {scope}: {rows} rows" for key, scope, rows in found]
                             + [f"{key} counts: {'; '.join(wrong)}" for key, wrong in miscounted.items()]),
            at=at,
        )
    click.echo(human.say(app.locale, "已根据原始记录重新计算统计数据", "facts recomputed from the evidence"))
