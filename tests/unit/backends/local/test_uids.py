"""Workspace uids: stable, durable, never an existing account's, never handed out twice."""

from __future__ import annotations

import pwd
from pathlib import Path

import pytest

from astrago.backends.base import BackendError
from astrago.backends.local.sandbox import SandboxUser
from astrago.backends.local.uids import WorkspaceUids


def test_each_workspace_gets_its_own_uid_and_keeps_it_across_restarts(tmp_path: Path) -> None:
    table = tmp_path / "uids.json"
    uids = WorkspaceUids(table, base=1_900_000_000)
    assert uids.user_for("ml-a") == SandboxUser(1_900_000_000, 1_900_000_000)
    assert uids.user_for("ml-b") == SandboxUser(1_900_000_001, 1_900_000_001)
    assert uids.user_for("ml-a").uid == 1_900_000_000

    restarted = WorkspaceUids(table, base=1_900_000_000)
    assert restarted.user_for("ml-b").uid == 1_900_000_001
    assert restarted.user_for("ml-c").uid == 1_900_000_002
    assert table.stat().st_mode & 0o077 == 0  # written privately (mkstemp)


def test_uids_of_existing_accounts_are_skipped(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    uids = WorkspaceUids(tmp_path / "uids.json", base=nobody)
    assert uids.user_for("ml-a").uid == nobody + 1


def test_an_unreadable_table_stops_instead_of_reassigning(tmp_path: Path) -> None:
    table = tmp_path / "uids.json"
    table.write_text("{not json")
    with pytest.raises(BackendError, match=r"cannot be read .* restore it from a backup"):
        WorkspaceUids(table, base=1_900_000_000).user_for("ml-a")
