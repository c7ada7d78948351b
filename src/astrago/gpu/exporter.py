"""`astrago gpu-exporter`: collect on a timer, serve the last snapshot on `/metrics`, and/or write it as a
node-exporter textfile. A scrape never triggers a collection: `nvidia-smi` can take seconds, and a scrape
must not."""

from __future__ import annotations

import gzip
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from astrago.gpu.collector import Collector, Snapshot
from astrago.gpu.exposition import CONTENT_TYPE
from astrago.gpu.metrics import MetricsRenderer

log = logging.getLogger(__name__)
_LANDING_PAGE = b'<html><body><h1>AstraGo GPU exporter</h1><a href="/metrics">/metrics</a></body></html>\n'


class _Rendered:
    """One exposition, plain and, once a scraper asks for it, gzip-compressed (Prometheus always asks;
    800 processes are ~1 MiB plain and ~10x smaller compressed)."""

    def __init__(self, plain: bytes) -> None:
        self.plain = plain
        self._gzip: bytes | None = None

    def gzip(self) -> bytes:
        if self._gzip is None:  # two racing scrapes compress twice at worst; both results are equal
            self._gzip = gzip.compress(self.plain, compresslevel=1)
        return self._gzip


class GpuExporter:
    def __init__(self, collector: Collector, textfile_dir: Path | None = None) -> None:
        self.collector = collector
        self.textfile_dir = textfile_dir
        self.renderer = MetricsRenderer(collector.health)
        self._lock = threading.Lock()  # one collection at a time: the renderer keeps state between runs
        self._rendered = _Rendered(self.renderer.render(None))

    @property
    def exposition(self) -> bytes:
        return self._rendered.plain

    @exposition.setter
    def exposition(self, plain: bytes) -> None:
        self._rendered = _Rendered(plain)  # an atomic swap: scrapes see the old exposition or the new one

    def collect_once(self) -> Snapshot:
        with self._lock:
            snapshot = self.collector.collect()
            self.exposition = self.renderer.render(snapshot)
            if self.textfile_dir is not None:
                self.renderer.write_textfile(self.textfile_dir, snapshot, self.exposition)
            return snapshot

    def run(self, interval_s: float, stop: threading.Event) -> None:
        """Collect every `interval_s` seconds (start to start) until `stop` is set."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.collect_once()
            except Exception:  # a bug in one collection must not end the exporter; it is counted and logged
                log.exception("GPU collection failed unexpectedly")
                self.collector.health.errors["collector"] += 1
                self.exposition = self.renderer.render(None)  # no stale GPU series; the error count shows why
            stop.wait(max(0.0, interval_s - (time.monotonic() - started)))

    def serve(self, host: str, port: int) -> ThreadingHTTPServer:
        """Start the HTTP server in a daemon thread; `/metrics` returns the last rendered snapshot."""
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    rendered = exporter._rendered
                    if "gzip" in self.headers.get("Accept-Encoding", ""):
                        self._send(HTTPStatus.OK, rendered.gzip(), CONTENT_TYPE, encoding="gzip")
                    else:
                        self._send(HTTPStatus.OK, rendered.plain, CONTENT_TYPE)
                elif path == "/healthz":
                    self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8")
                elif path == "/":
                    self._send(HTTPStatus.OK, _LANDING_PAGE, "text/html; charset=utf-8")
                else:
                    self._send(
                        HTTPStatus.NOT_FOUND, b"not found; try /metrics\n", "text/plain; charset=utf-8"
                    )

            def _send(
                self, status: HTTPStatus, body: bytes, content_type: str, encoding: str | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                if encoding:
                    self.send_header("Content-Encoding", encoding)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("%s %s", self.address_string(), format % args)

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="gpu-exporter-http", daemon=True).start()
        return server


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (all interfaces) or `[v6]:PORT`."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--listen wants HOST:PORT (e.g. 127.0.0.1:9835), not {value!r}")
    return (host.strip("[]") or "0.0.0.0"), int(port)
