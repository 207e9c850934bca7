"""The `cerberus` command: serve, migrate, demo, admin, audit, version."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import traceback
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

from cerberus import __version__
from cerberus.errors import ConfigurationError
from cerberus.settings import Settings, load_settings

T = TypeVar("T")
Command = Callable[[argparse.Namespace, Settings], int]


class CommandError(Exception):
    """A failure the user can act on; printed as one line, exit status 1."""


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        command: Command = args.command
        code = command(args, settings)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def _bounded(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer from `low` to `high` (Settings bounds the same values
    from the environment); out of range, argparse prints the usage and one line."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be from {low} to {high}")
        return value

    return parse


_port = _bounded(1, 65535, "a port")
_workers = _bounded(1, 64, "workers")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cerberus", description="Cerberus, a governance gateway for MCP."
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway (HTTP server)")
    serve.add_argument("--host", help="address to bind (default: HOST, 127.0.0.1)")
    serve.add_argument("--port", type=_port, help="port to bind (default: PORT, 8000)")
    serve.add_argument("--workers", type=_workers, help="worker processes (default: WORKERS, 1)")
    serve.set_defaults(command=run_serve)

    migrate = commands.add_parser("migrate", help="upgrade the database schema")
    migrate.add_argument("--sql", action="store_true", help="print the SQL instead of running it")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    migrate.set_defaults(command=run_migrate)

    demo = commands.add_parser(
        "demo",
        help="run the gateway with a demo upstream, tenant, policies and agent key",
        description="Start a bundled demo MCP server and the gateway; create (once) a demo "
        "organisation, workspace, agent and starter policies; print the agent key, the admin "
        "login and client configuration to paste.",
    )
    demo.add_argument("--host", help="address to bind (default: HOST, 127.0.0.1)")
    demo.add_argument("--port", type=_port, help="gateway port (default: PORT, 8000)")
    demo.add_argument(
        "--upstream-port", type=_port, help="demo upstream port (default: gateway port + 1)"
    )
    demo.add_argument(
        "--reset-password", action="store_true", help="set and print a new demo admin password"
    )
    demo.set_defaults(command=run_demo)

    admin = commands.add_parser("admin", help="administer people (create-superuser)")
    admin_commands = admin.add_subparsers(title="admin commands", required=True, metavar="ACTION")
    superuser = admin_commands.add_parser(
        "create-superuser", help="create a super_admin who can create organisations"
    )
    superuser.add_argument("--email", required=True)
    superuser.add_argument("--password", help="prompted for when omitted (keeps it out of history)")
    superuser.set_defaults(command=run_create_superuser)

    audit = commands.add_parser("audit", help="the audit trail (restore)")
    audit_commands = audit.add_subparsers(title="audit commands", required=True, metavar="ACTION")
    restore = audit_commands.add_parser(
        "restore",
        help="write back the audit events a gateway logged as not written",
        description="Read a gateway's log (its JSON lines, or an export that puts something "
        "before each) and insert the events it logged as 'audit event not written' when its "
        "database was unreachable at shutdown. Events already stored are left as they are.",
    )
    restore.add_argument(
        "logs", nargs="*", default=["-"], help="log files to read (default: standard input)"
    )
    restore.set_defaults(command=run_audit_restore)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(command=run_version)
    return parser


def run_version(args: argparse.Namespace, settings: Settings) -> int:
    print(f"cerberus {__version__}")
    return 0


def run_create_superuser(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from cerberus.auth.bootstrap import create_superuser_in
    from cerberus.errors import CerberusError

    password = args.password if args.password is not None else getpass.getpass("password: ")
    try:
        user = with_database(settings, lambda: create_superuser_in(settings, args.email, password))
    except CerberusError as exc:
        raise CommandError(exc.detail) from None
    print(f"created super_admin {user.email} (id {user.id})")
    return 0


def run_audit_restore(args: argparse.Namespace, settings: Settings) -> int:
    from cerberus.audit.restore import Restored, restore
    from cerberus.db import create_engine, create_sessionmaker

    async def write_back() -> Restored:
        engine = create_engine(settings)
        try:
            return await restore(create_sessionmaker(engine), _log_lines(args.logs))
        finally:
            await engine.dispose()

    done = with_database(settings, write_back)
    print(
        f"audit events restored: {done.written}, already stored: {done.already_stored}, "
        f"unreadable lines: {done.unreadable}"
    )
    return 0


def _log_lines(names: Sequence[str]) -> Iterator[str]:
    """The lines of each file in turn (`-`: standard input), read as they are used."""
    for name in names:
        if name == "-":
            yield from sys.stdin
            continue
        try:
            log = open(name, encoding="utf-8", errors="replace")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"cannot read {name}: {exc.strerror}") from None
        with log:
            yield from log


def run_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from alembic.util import CommandError as AlembicError

    from cerberus.migrate import upgrade, upgrade_sql

    try:
        if args.sql:
            print(upgrade_sql(settings, args.revision), end="")
            return 0
        outcome = with_database(settings, lambda: upgrade(settings, args.revision))
    except AlembicError as exc:
        # An unknown or ambiguous --revision: alembic's one line, not its traceback.
        raise CommandError(str(exc).splitlines()[0]) from None
    if outcome.applied:
        print(f"migrated {outcome.before or 'empty database'} -> {outcome.after}")
    else:
        print(f"already at {outcome.after}")
    return 0


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from cerberus.logs import configure_logging

    configure_logging(settings.LOG_LEVEL, service=settings.APP_NAME)
    workers = args.workers or settings.WORKERS
    if workers > 1 and not settings.REDIS_URL:
        # Each worker would keep its own cache: rate-limit windows (a limit admitted workers
        # times its count), sessions (one opened on a worker unknown to the others), keys.
        raise ConfigurationError(
            f"{workers} workers need REDIS_URL: without it each worker keeps its own "
            "rate-limit windows and sessions, so a limit admits that many times its count"
        )
    # Migrate (or at least reach the database) before uvicorn starts, so a bad DATABASE_URL
    # is one line here rather than a traceback from inside the server; in a child process,
    # so that alembic never loads in this one, which serves when there is one worker.
    child = fork_child(
        settings, _upgrade if settings.RUN_MIGRATIONS_ON_STARTUP else _current_revision
    )
    if workers == 1:
        # This process will serve: it imports the application (about a second) while the
        # child migrates on another core, instead of after it (0.2-0.25 s of cold start).
        import cerberus.app  # noqa: F401
    wait_for_child(child)
    # Done here once: the workers' lifespan need not migrate again (nor import alembic).
    os.environ["RUN_MIGRATIONS_ON_STARTUP"] = "false"
    uvicorn.run(
        "cerberus.app:app_from_env",
        factory=True,
        host=args.host or settings.HOST,
        port=args.port or settings.PORT,
        workers=workers,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        # No "server: uvicorn" on every answer: it tells a caller what to attack, and it is
        # one more header to write on each proxied call.
        server_header=False,
        # The client's address comes from TRUSTED_PROXY_HOPS (client_address.py): with "*",
        # uvicorn believed the leftmost X-Forwarded-For entry, which the client writes.
        proxy_headers=False,
        timeout_graceful_shutdown=15,
    )
    return 0


def run_demo(args: argparse.Namespace, settings: Settings) -> int:
    from cerberus.demo import command as demo
    from cerberus.demo.provision import provision

    if settings.APP_ENV == "production":
        # It creates a super_admin and a tenant: not something to do to a production database.
        raise CommandError("cerberus demo is for trying Cerberus locally, not APP_ENV=production")
    host = args.host or settings.HOST
    port = args.port or settings.PORT
    upstream_port = args.upstream_port or port + 1
    if upstream_port > 65535:
        raise CommandError("--port 65535 leaves no port for the demo upstream: set --upstream-port")
    try:
        demo.ensure_port_free(host, port, "gateway", "--port")
        demo.ensure_port_free("127.0.0.1", upstream_port, "demo upstream", "--upstream-port")
        in_child_process(settings, _upgrade)
        with demo.upstream_process("127.0.0.1", upstream_port) as upstream_url:
            tenant = with_database(
                settings,
                lambda: provision(settings, upstream_url, reset_password=args.reset_password),
            )
            print(demo.banner(tenant, demo.local_url(host, port), upstream_url), flush=True)
            return run_serve(argparse.Namespace(host=host, port=port, workers=1), settings)
    except demo.DemoError as exc:
        raise CommandError(str(exc)) from None


def with_database(settings: Settings, action: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a database coroutine; an unreachable database becomes one readable line."""
    # Imported here: with --workers above 1 this process only supervises, and SQLAlchemy
    # and FastAPI (through cerberus.db) would cost it 27 MiB resident for nothing.
    from sqlalchemy.exc import DBAPIError, OperationalError

    from cerberus.db import safe_url

    try:
        return asyncio.run(action())
    except (OSError, OperationalError, DBAPIError, TimeoutError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        where = safe_url(settings.database_url)
        if _answered(exc):
            # Reached, and it refused (a table missing: never migrated; a wrong password).
            raise CommandError(f"the database at {where} refused: {reason}") from None
        raise CommandError(f"cannot reach the database at {where}: {reason}") from None


def _answered(exc: BaseException) -> bool:
    """Whether the database itself raised this error (PostgreSQL names its SQLSTATE; SQLite
    runs in the process), rather than the way to it failing."""
    import sqlite3

    orig = getattr(exc, "orig", None)
    return bool(getattr(orig, "sqlstate", None)) or isinstance(orig, sqlite3.Error)


def in_child_process(
    settings: Settings, action: Callable[[Settings], Coroutine[Any, Any, Any]]
) -> None:
    """Run a database action (the migration) in a forked child, as `with_database` would here.

    The process that forks goes on to serve, and a migration loads alembic, mako, pygments
    and SQLAlchemy's other dialects: 12 MiB resident it would keep for its whole life. A
    fork starts no second interpreter. A failure the user can act on comes back as the same
    one-line CommandError; anything else prints its traceback in the child and exits 1, as
    an uncaught exception here would.
    """
    wait_for_child(fork_child(settings, action))


def fork_child(
    settings: Settings, action: Callable[[Settings], Coroutine[Any, Any, Any]]
) -> tuple[int, int]:
    """Start `in_child_process`'s child; (its pid, the pipe its error comes back on).

    Fork before any thread starts here: a child forked from a threaded process may inherit
    a lock another thread held."""
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        code = 0
        try:
            with_database(settings, lambda: action(settings))
        except CommandError as exc:
            os.write(write_end, str(exc).encode())
            code = 1
        except KeyboardInterrupt:
            code = 130
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            # No cleanup of the parent's state (open servers, `with` blocks) in the child.
            os._exit(code)
    os.close(write_end)
    return pid, read_end


def wait_for_child(child: tuple[int, int]) -> None:
    """Wait for a `fork_child` child; its CommandError or exit status is raised here."""
    pid, read_end = child
    with os.fdopen(read_end, "rb") as reader:
        message = reader.read().decode()
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if message:
        raise CommandError(message)
    if code != 0:
        raise SystemExit(code)


async def _upgrade(settings: Settings) -> None:
    from cerberus.migrate import upgrade

    await upgrade(settings)


async def _current_revision(settings: Settings) -> None:
    from cerberus.migrate import current_revision

    await current_revision(settings)
