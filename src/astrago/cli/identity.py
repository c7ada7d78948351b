"""Identity commands: log in (password or SSO), log out, change your password, API tokens, and the
admins' user lifecycle (disable, enable, delete)."""

from __future__ import annotations

import secrets
import sys
import threading
import time
import webbrowser
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Annotated, Any, ClassVar
from urllib.parse import parse_qs, urlparse

import httpx
import typer
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client

from astrago.cli.errors import CliError, err_console
from astrago.cli.http import ApiClient, CliConfig
from astrago.cli.output import (
    Column,
    JsonOpt,
    OutputFormat,
    OutputOpt,
    chosen_format,
    emit,
    print_table,
    strip_kind,
)
from astrago.cli.render import console
from astrago.services.schemas import SsoConfigOut, SsoTokenIn, TokenOut

token_app = typer.Typer(
    help="API tokens for scripts and CI (they expire; 90 days by default).", no_args_is_help=True
)
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def read_password(from_stdin: bool, confirm: bool, prompt: str = "Password") -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliError("no password on standard input", exit_code=2)
        return password
    if not sys.stdin.isatty():
        raise CliError("no terminal to ask for a password", exit_code=2, hint="use --password-stdin")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


def _when(value: datetime | None) -> str:
    if value is None:
        return "never"
    return value.astimezone().strftime("%Y-%m-%d %H:%M %Z")


# -- login and logout ------------------------------------------------------------------------------------


def login(
    url: Annotated[str, typer.Option(help="the server, e.g. http://127.0.0.1:8080")],
    username: Annotated[str | None, typer.Option(help="your user name (local accounts)")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
    sso: Annotated[
        bool, typer.Option("--sso", help="sign in through the identity provider (device code or browser)")
    ] = False,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="with --sso: only print the link, do not open a browser")
    ] = False,
    browser_redirect: Annotated[
        bool,
        typer.Option(
            "--browser-redirect",
            help="with --sso: sign in with a browser on this machine (redirect to 127.0.0.1), no device code",
        ),
    ] = False,
) -> None:
    """Log in and keep this machine's session in the CLI config file (it expires; log in again then)."""
    if sso:
        session = _sso_session(url, open_browser=not no_browser, loopback=browser_redirect)
    else:
        if not username:
            raise CliError("give --username, or --sso to sign in through the identity provider", exit_code=2)
        password = read_password(password_stdin, confirm=False)
        session = ApiClient(url, None).login(username, password)
    config = CliConfig.load()
    config.url, config.token, config.username = url, session.token, session.username
    path = config.save()
    console.print(
        f"Logged in to {url} as {session.username} (session saved in {path}; "
        f"it expires {_when(session.expires_at)}, or sooner when unused)"
    )


def logout() -> None:
    """End this machine's session (and the identity provider's, for SSO sessions)."""
    config = CliConfig.load()
    if not config.token:
        raise CliError("you are not logged in")
    result = ApiClient.from_config().logout()
    config.token = None
    config.save()
    console.print("Logged out")
    if result.logout_url:
        console.print(f"To end the identity provider's browser session too, open: {result.logout_url}")


def _sso_session(url: str, open_browser: bool, loopback: bool) -> TokenOut:
    anonymous = ApiClient(url, None)
    settings = anonymous.sso_config()
    if not settings.enabled:
        raise CliError(f"{url} has no single sign-on configured", hint="log in with --username")
    if settings.device_authorization_endpoint and not loopback:
        tokens = _device_grant(settings, open_browser)
    else:
        tokens = _loopback_grant(settings, open_browser)
    if not isinstance(tokens.get("access_token"), str):
        raise CliError("the identity provider returned no access token")
    return anonymous.sso_session(
        SsoTokenIn(
            access_token=tokens["access_token"],
            refresh_token=tokens.get("refresh_token"),
            id_token=tokens.get("id_token"),
        )
    )


def _device_grant(settings: SsoConfigOut, open_browser: bool) -> dict[str, Any]:
    """OAuth 2.0 device authorization grant (RFC 8628): sign in on any browser, even another machine's."""
    client_id, scope = settings.cli_client_id, settings.scopes
    assert settings.device_authorization_endpoint is not None
    assert settings.token_endpoint is not None
    with httpx.Client(timeout=30) as http:
        started = _idp_json(
            http.post(settings.device_authorization_endpoint, data={"client_id": client_id, "scope": scope})
        )
        link = started.get("verification_uri_complete") or started["verification_uri"]
        err_console.print(f"To sign in, open {link}\nand confirm the code [bold]{started['user_code']}[/]")
        if open_browser:
            webbrowser.open(link)
        interval = float(started.get("interval", 5))
        deadline = time.monotonic() + float(started.get("expires_in", 600))
        while time.monotonic() < deadline:
            time.sleep(interval)
            answer = http.post(
                settings.token_endpoint,
                data={
                    "grant_type": DEVICE_GRANT,
                    "device_code": started["device_code"],
                    "client_id": client_id,
                },
            )
            body = (
                answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
            )
            error = body.get("error")
            if answer.status_code == 200:
                return dict(body)
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5
                continue
            raise CliError(
                f"sign-in failed at the identity provider: {error or answer.status_code} "
                f"{body.get('error_description', '')}".strip()
            )
    raise CliError("the sign-in code expired before it was confirmed; run `astrago login --sso` again")


def _idp_json(response: httpx.Response) -> dict[str, Any]:
    if response.status_code != 200:
        raise CliError(f"the identity provider refused: {response.status_code} {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


class _Callback(BaseHTTPRequestHandler):
    result: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
        type(self).result.update(query)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        self.wfile.write(b"AstraGo: signed in. You can close this tab and return to the terminal.\n")

    def log_message(self, *_args: Any) -> None:
        return


def _loopback_grant(settings: SsoConfigOut, open_browser: bool) -> dict[str, Any]:
    """Authorization code + PKCE with a redirect to a one-shot listener on 127.0.0.1 (RFC 8252), for IdPs
    without the device grant. The browser must run on this machine."""
    server = HTTPServer(("127.0.0.1", 0), _Callback)
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/callback"
    verifier, state = generate_token(64), secrets.token_urlsafe(24)
    _Callback.result = {}
    if not settings.authorization_endpoint or not settings.token_endpoint:
        raise CliError(
            "the identity provider offers neither the device grant nor the authorization code flow"
        )
    with OAuth2Client(
        client_id=settings.cli_client_id,
        scope=settings.scopes,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as oauth:
        link, _ = oauth.create_authorization_url(
            settings.authorization_endpoint, state=state, code_verifier=verifier
        )
        err_console.print(f"To sign in, open {link}")
        if open_browser:
            webbrowser.open(link)
        waiter = threading.Thread(target=server.handle_request, daemon=True)
        waiter.start()
        waiter.join(timeout=600)
        server.server_close()
        got = _Callback.result
        if got.get("state") != state or "code" not in got:
            raise CliError(
                f"sign-in did not complete: {got.get('error_description') or got.get('error') or 'no answer'}"
            )
        return dict(oauth.fetch_token(settings.token_endpoint, code=got["code"], code_verifier=verifier))


def passwd(
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="read the current and the new password from stdin, one a line"),
    ] = False,
) -> None:
    """Change your password (your other login sessions end)."""
    current = read_password(password_stdin, confirm=False, prompt="Current password")
    new = read_password(password_stdin, confirm=True, prompt="New password")
    ApiClient.from_config().change_password(current, new)
    console.print("Password changed")


# -- tokens ----------------------------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    name: str,
    expires: Annotated[
        int | None, typer.Option("--expires", "--expires-in-days", help="days until it expires (default 90)")
    ] = None,
    read_only: Annotated[bool, typer.Option("--read-only", help="allow reading only (GET)")] = False,
) -> None:
    """Create an API token (printed once) for scripts: export ASTRAGO_TOKEN=..."""
    token = ApiClient.from_config().create_token(name, expires, read_only=read_only)
    sys.stdout.write(f"{token.token}\n")
    err_console.print(f"token {token.id} ({token.scope}) expires {_when(token.expires_at)}")


TOKEN_COLUMNS = (
    Column("ID"),
    Column("USER"),
    Column("NAME", free_text=True),
    Column("KIND"),
    Column("SCOPE"),
    Column("EXPIRES"),
    Column("LAST-USED"),
)


@token_app.command("list")
def token_list(
    everyone: Annotated[bool, typer.Option("--all", help="everyone's tokens and sessions (admins)")] = False,
    output: OutputOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Your live API tokens and login sessions (never their secrets)."""
    tokens = ApiClient.from_config().tokens(everyone=everyone)

    def table(fmt: OutputFormat) -> None:
        rows = [
            [
                t.id,
                t.username,
                t.name,
                t.kind,
                t.scope,
                _when(t.expires_at),
                _when(t.last_used_at) if t.last_used_at else "-",
            ]
            for t in tokens
        ]
        print_table(TOKEN_COLUMNS, rows, fmt)

    emit(
        tokens,
        chosen_format(output, json_output),
        kind="token",
        names=lambda: [t.id for t in tokens],
        table=table,
    )


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a token or session: yours, or anyone's for admins."""
    ApiClient.from_config().revoke_token(strip_kind("token", token_id))
    console.print(f"Revoked token {token_id}")


# -- user lifecycle (admins) -----------------------------------------------------------------------------


def user_disable(name: str) -> None:
    """Disable an account: its sessions and tokens are revoked at once (admins)."""
    ApiClient.from_config().set_user_active(strip_kind("user", name), active=False)
    console.print(f"Disabled {name}")


def user_enable(name: str) -> None:
    """Enable a disabled account (admins)."""
    ApiClient.from_config().set_user_active(strip_kind("user", name), active=True)
    console.print(f"Enabled {name}")


def user_delete(name: str) -> None:
    """Delete an account that has no unfinished workloads (admins)."""
    ApiClient.from_config().delete_user(strip_kind("user", name))
    console.print(f"Deleted {name}")


def register(app: typer.Typer, user_app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
    app.command()(passwd)
    app.add_typer(token_app, name="token")
    user_app.command("disable")(user_disable)
    user_app.command("enable")(user_enable)
    user_app.command("delete")(user_delete)
