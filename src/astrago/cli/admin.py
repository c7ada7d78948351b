"""`astrago admin`: what an operator does on the server's own machine, without logging in."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from astrago.cli.errors import CliError
from astrago.cli.server import first_line, load_settings
from astrago.services.errors import ServiceError

admin_app = typer.Typer(
    help="Operator commands, run on the server's machine with access to its data directory.",
    no_args_is_help=True,
)


@admin_app.command("reset-password")
def reset_password(
    username: Annotated[str, typer.Argument(help="whose password")] = "admin",
    data_dir: Annotated[Path | None, typer.Option(help="the server's data dir [default: ~/.astrago]")] = None,
    database_url: Annotated[str | None, typer.Option(help="the server's database, if not SQLite")] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="read the new password from stdin instead of generating one"),
    ] = False,
) -> None:
    """Set a new password for a user who lost theirs (prints a generated one once). The server may keep
    running; the user's API tokens stay valid."""
    settings = load_settings(data_dir=data_dir, database_url=database_url)
    url = settings.effective_database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        raise CliError(
            f"no AstraGo database at {parsed.database}",
            exit_code=2,
            hint="run this on the server's machine, with the server's --data-dir (or ASTRAGO_DATA_DIR)",
        )
    given = None
    if password_stdin:
        given = sys.stdin.readline().rstrip("\r\n")
        if not given:
            raise CliError("no password on standard input", exit_code=2)
    password = asyncio.run(_reset(settings, username, given))
    if given is None:
        sys.stdout.write(f"New password for {username}: {password}  (shown once; keep it safe)\n")
    else:
        sys.stdout.write(f"Set a new password for {username}\n")


async def _reset(settings: object, username: str, password: str | None) -> str:
    from sqlalchemy.exc import SQLAlchemyError

    from astrago.config import Settings
    from astrago.services.context import ServiceContext
    from astrago.services.recovery import AccountRecovery
    from astrago.store.db import create_engine, create_session_factory, is_sqlite

    assert isinstance(settings, Settings)
    engine = create_engine(settings.effective_database_url)
    try:
        ctx = ServiceContext(
            sessions=create_session_factory(engine), settings=settings, serialize_writes=is_sqlite(engine)
        )
        return await AccountRecovery(ctx).reset_password(username, password)
    except ServiceError as exc:
        raise CliError(exc.detail, exit_code=2) from exc
    except SQLAlchemyError as exc:
        raise CliError(f"cannot use the database: {first_line(exc)}") from exc
    finally:
        await engine.dispose()


def register(app: typer.Typer) -> None:
    app.add_typer(admin_app, name="admin")
