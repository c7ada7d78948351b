"""The CLI's connection to a server: the typed `astrago.client.Client`, with its errors turned into
CliErrors (one line, a hint, no traceback). `ApiClient.request/stream` stay for commands that call an
endpoint the typed client does not cover yet."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from astrago.cli.errors import CliError
from astrago.client import ApiError, Client, ClientConfig, ServerUnreachable, config_path
from astrago.client.client import DEFAULT_URL
from astrago.client.config import ConfigUnreadable

__all__ = ["DEFAULT_URL", "ApiClient", "CliConfig", "cli_errors", "config_path"]


class CliConfig(ClientConfig):
    @classmethod
    def load(cls) -> CliConfig:
        try:
            loaded = ClientConfig.load()
        except ConfigUnreadable as exc:
            raise CliError(str(exc), hint="delete it and log in again") from exc
        return cls(**loaded.__dict__)


@contextmanager
def cli_errors() -> Iterator[None]:
    try:
        yield
    except ApiError as exc:
        hint = "log in again with `astrago login`" if exc.status == 401 else None
        raise CliError(exc.detail, exit_code=1, hint=hint) from exc
    except ServerUnreachable as exc:
        hint = "is `astrago server` running there? set ASTRAGO_URL or log in with --url"
        raise CliError(str(exc), hint=hint) from exc


class ApiClient(Client):
    """The typed client; every call raises CliError instead of the client's errors."""

    @classmethod
    def from_config(cls, require_token: bool = True) -> ApiClient:
        config = CliConfig.load()
        url = os.environ.get("ASTRAGO_URL") or config.url or DEFAULT_URL
        token = os.environ.get("ASTRAGO_TOKEN") or config.token
        if require_token and not token:
            raise CliError("you are not logged in", hint=f"run `astrago login --url {url} --username NAME`")
        return cls(url, token)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        with cli_errors():
            return super().request(method, path, **kwargs)

    def _typed(self, model: Any, method: str, path: str, **kwargs: Any) -> Any:
        with cli_errors():
            return super()._typed(model, method, path, **kwargs)

    @contextmanager
    def stream(self, path: str, params: dict[str, Any]) -> Iterator[Iterator[bytes]]:
        with cli_errors(), super().stream(path, params) as chunks:
            yield chunks
