"""A cache of one kind of object kept current by list + watch (a small client-side informer).

The watch resumes from the last resourceVersion it saw, so a dropped connection costs no events; when
the API server has compacted that version away (410 Gone) the informer lists again and reports the
difference between its cache and the fresh list as ordinary changes, so nothing is missed either way."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from lightkube import AsyncClient
from lightkube.core.client import LabelSelector
from lightkube.core.exceptions import NotReadyError
from lightkube.types import OnErrorAction, OnErrorResult

from astrago.backends.kubernetes.errors import is_gone

log = logging.getLogger(__name__)

Manifest = dict[str, Any]
ChangeHandler = Callable[[Manifest | None, Manifest | None], None]  # (old, new); new None = deleted

_MAX_BACKOFF_S = 30.0


class Informer:
    def __init__(
        self,
        client: AsyncClient,
        resource: Any,
        *,
        namespace: str | None,
        labels: Mapping[str, str] | None = None,
        on_change: ChangeHandler,
    ) -> None:
        self._client = client
        self._resource = resource
        self._namespace = namespace
        self._labels: LabelSelector = dict(labels or {})
        self._on_change = on_change
        self.objects: dict[str, Manifest] = {}
        self.synced = asyncio.Event()
        self.tried = asyncio.Event()  # the first list finished, well or not (see `last_error`)
        self.lists = 0  # how many times the informer (re)listed: once at start, again after each 410
        self.last_error: BaseException | None = None

    @property
    def kind(self) -> str:
        return str(getattr(self._resource, "__name__", self._resource))

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                version = await self._relist()
                self.synced.set()
                self.tried.set()
                backoff = 0.2
                async for event, obj in self._client.watch(
                    self._resource,
                    namespace=self._namespace,
                    labels=self._labels or None,
                    resource_version=version,
                    on_error=self._on_watch_error,
                ):
                    self._apply(event, obj.to_dict())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: log it, back off, list again; the cache stays served
                self.last_error = exc
                self.tried.set()
                if is_gone(exc):
                    log.info("watch of %s expired (410 Gone); listing again", self.kind)
                    continue
                log.warning("watch of %s failed (%s); retrying in %.1fs", self.kind, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)

    def _on_watch_error(self, exc: Exception, attempt: int) -> OnErrorResult:
        # A 410 must reach `run` so it lists afresh; other hiccups resume from the last version first.
        if is_gone(exc) or attempt > 3:
            return OnErrorResult(OnErrorAction.RAISE)
        return OnErrorResult(OnErrorAction.RETRY, sleep=0.2 * attempt)

    async def _relist(self) -> str | None:
        listing = self._client.list(self._resource, namespace=self._namespace, labels=self._labels or None)
        fresh: dict[str, Manifest] = {}
        async for obj in listing:
            data = obj.to_dict()
            if self._selected(data):
                fresh[_name(data)] = data
        self.lists += 1
        for name in set(self.objects) - set(fresh):
            self._on_change(self.objects.pop(name), None)
        for name, data in fresh.items():
            old = self.objects.get(name)
            self.objects[name] = data
            if old != data:
                self._on_change(old, data)
        try:
            return str(listing.resourceVersion)
        except NotReadyError:  # the server sent no version: watch from "now"
            return None

    def _apply(self, event: str, data: Manifest) -> None:
        name = _name(data)
        if event == "DELETED" or not self._selected(data):
            old = self.objects.pop(name, None)
            if old is not None:
                self._on_change(old, None)
            return
        if event in ("ADDED", "MODIFIED"):
            old = self.objects.get(name)
            self.objects[name] = data
            if old != data:
                self._on_change(old, data)

    def _selected(self, data: Manifest) -> bool:
        # The API server filters by the selector already; checking again keeps a lax server honest.
        labels = (data.get("metadata") or {}).get("labels") or {}
        return all(labels.get(key) == value for key, value in self._labels.items())


def _name(data: Manifest) -> str:
    """The cache key: `namespace/name` for namespaced objects (a cluster-wide informer sees the same pod
    name in several namespaces), the name alone for cluster-scoped ones (nodes)."""
    metadata = data.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata.get('name')}" if namespace else str(metadata.get("name"))
