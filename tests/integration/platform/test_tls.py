"""`astrago server --tls-cert --tls-key`: real HTTPS, TLS 1.3 at least unless 1.2 is explicitly allowed."""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests.support.server import ADMIN_PASSWORD, ServerProcess, User


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A throwaway CA and the server's certificate for 127.0.0.1: (ca, cert, key)."""
    root = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    issued.private_key_pem.write_to_path(str(root / "key.pem"))
    for index, blob in enumerate(issued.cert_chain_pems):
        blob.write_to_path(str(root / "cert.pem"), append=index > 0)
    return root / "ca.pem", root / "cert.pem", root / "key.pem"


def https_server(root: Path, files: tuple[Path, Path, Path], **env: str) -> Iterator[ServerProcess]:
    ca, cert, key = files
    server = ServerProcess(
        data_dir=root / "data",
        extra_args=["--tls-cert", str(cert)],
        extra_env={"ASTRAGO_TLS_KEY": str(key), **env},  # the key through the setting, the cert as a flag
        tls_ca=ca,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, tls_files: tuple[Path, Path, Path]
) -> Iterator[ServerProcess]:
    yield from https_server(tmp_path_factory.mktemp("https"), tls_files)


def handshake(server: ServerProcess, ca: Path, version: ssl.TLSVersion) -> str | None:
    """The protocol a client limited to `version` agrees on with the server."""
    context = ssl.create_default_context(cafile=str(ca))
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # the client offers old versions; the server must refuse
    context.minimum_version = context.maximum_version = version
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.version()


def test_https_answers_with_tls_1_3(server: ServerProcess, tls_files: tuple[Path, Path, Path]) -> None:
    ca = tls_files[0]
    assert handshake(server, ca, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    response = httpx.get(f"{server.url}/healthz", verify=server.verify)
    assert response.status_code == 200
    assert "https://127.0.0.1" in server.logs()  # the banner gives the https URL


TLS_1_1_DEPRECATED = pytest.mark.filterwarnings(
    "ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning"
)


@TLS_1_1_DEPRECATED
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_2], ids=["1.1", "1.2"])
def test_older_protocols_are_refused_by_default(
    server: ServerProcess, tls_files: tuple[Path, Path, Path], version: ssl.TLSVersion
) -> None:
    with pytest.raises(ssl.SSLError):
        handshake(server, tls_files[0], version)


@TLS_1_1_DEPRECATED
def test_tls_1_2_only_when_explicitly_allowed(tmp_path: Path, tls_files: tuple[Path, Path, Path]) -> None:
    for server in https_server(tmp_path, tls_files, ASTRAGO_TLS_MIN_VERSION="1.2"):
        assert handshake(server, tls_files[0], ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
        with pytest.raises(ssl.SSLError):
            handshake(server, tls_files[0], ssl.TLSVersion.TLSv1_1)


def test_the_cli_uploads_over_https(
    server: ServerProcess, tls_files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """`astrago upload` trusts what the CLI's other commands trust (here the CA in SSL_CERT_FILE) and
    sends its chunks over TLS."""
    trust = {"SSL_CERT_FILE": str(tls_files[0])}
    admin = User(server, "admin", tmp_path / "home")
    admin.cli(
        "login",
        "--url",
        server.url,
        "--username",
        "admin",
        "--password-stdin",
        stdin=ADMIN_PASSWORD,
        env=trust,
    )
    admin.cli("workspace", "create", "secure", env=trust)
    admin.cli("volume", "create", "ds", "-w", "secure", env=trust)
    data = os.urandom(3_000_000)  # above what goes in one request: created, then sent as a chunk
    source = tmp_path / "over-tls.bin"
    source.write_bytes(data)
    done = admin.cli("upload", str(source), "ds:/", "-w", "secure", env=trust)
    assert "Uploaded 1 files" in done.stdout
    (landed,) = (server.data_dir / "volumes").glob("*/*/over-tls.bin")
    assert landed.read_bytes() == data
    untrusted = admin.cli("upload", str(source), "ds:/again", "-w", "secure", check=False, timeout=20)
    assert untrusted.returncode == 1  # at once: retrying cannot make the certificate trusted
    assert "is not trusted" in untrusted.stderr
    assert "Traceback" not in untrusted.stderr
