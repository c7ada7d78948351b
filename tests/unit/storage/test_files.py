"""The files behind volumes: no path or link leads outside a volume; uploads land whole; archives are
valid tar files of exactly what is there."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from astrago.storage.archive import tar_stream
from astrago.storage.files import PathRefused, VolumeFiles
from astrago.storage.parts import OffsetMismatch, PartWriter

WS, VOL = "ws1", "vol1"


@pytest.fixture
def files(tmp_path: Path) -> VolumeFiles:
    volume_files = VolumeFiles(tmp_path / "volumes")
    volume_files.ensure_layout()
    volume_files.create_volume_dir(WS, VOL)
    return volume_files


def _finish(files: VolumeFiles, upload_id: str, data: bytes, path: str) -> None:
    files.create_part(upload_id)
    writer = PartWriter(str(files.part_path(upload_id)), 0, "sha256")
    writer.write(data)
    assert writer.digest() == hashlib.sha256(data).digest()
    writer.keep()
    writer.close()
    files.place_part(upload_id, WS, VOL, path)


def test_a_finished_upload_lands_at_its_path_and_usage_counts_it(files: VolumeFiles) -> None:
    _finish(files, "u1", b"hello", "train/deep/a.txt")
    _finish(files, "u2", b"bye", "b.txt")
    assert (files.volume_dir(WS, VOL) / "train/deep/a.txt").read_bytes() == b"hello"
    # open to whoever mounts the volume (a workspace's sandbox uid, a pod's user); the root is private
    assert (files.volume_dir(WS, VOL) / "train/deep/a.txt").stat().st_mode & 0o777 == 0o666
    assert (files.volume_dir(WS, VOL) / "train/deep").stat().st_mode & 0o777 == 0o777
    assert files.root.stat().st_mode & 0o777 == 0o700
    assert files.part_size("u1") is None  # the part file became the file
    usage = files.usage(WS, VOL)
    assert (usage.bytes, usage.files) == (8, 2)
    assert [e.name for e in files.list_dir(WS, VOL, "")] == ["train", "b.txt"]  # folders first
    assert files.existing_file_size(WS, VOL, "b.txt") == 3
    _finish(files, "u3", b"replaced!", "b.txt")  # a new upload replaces the file atomically
    assert (files.volume_dir(WS, VOL) / "b.txt").read_bytes() == b"replaced!"


def test_links_planted_in_a_volume_never_lead_outside(files: VolumeFiles, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    root = files.volume_dir(WS, VOL)
    (root / "escape").symlink_to(outside)
    (root / "secret-link").symlink_to(outside / "secret")
    with pytest.raises(PathRefused, match="symbolic link"):
        files.list_dir(WS, VOL, "escape")
    with pytest.raises(PathRefused, match="symbolic link"):
        files.open_file(WS, VOL, "secret-link")
    with pytest.raises(PathRefused):
        files.existing_file_size(WS, VOL, "secret-link")
    files.create_part("u1")
    with pytest.raises(PathRefused, match="symbolic link"):
        files.place_part("u1", WS, VOL, "escape/planted")
    assert not (outside / "planted").exists()
    assert files.usage(WS, VOL).files == 0  # links are not followed when measuring either


def test_a_folder_in_the_way_is_refused(files: VolumeFiles) -> None:
    (files.volume_dir(WS, VOL) / "train").mkdir()
    with pytest.raises(PathRefused, match="folder"):
        files.existing_file_size(WS, VOL, "train")
    files.create_part("u1")
    with pytest.raises(PathRefused, match="folder"):
        files.place_part("u1", WS, VOL, "train")


def test_batches_written_in_one_thread_and_hashed_in_another_land_exactly(files: VolumeFiles) -> None:
    """What the server does with each batch of a chunk: `append` and `hash` at once, in two threads
    (and the write-behind after every batch), then `keep`."""
    files.create_part("u1")
    writer = PartWriter(str(files.part_path("u1")), 0, "sha256")
    batches = [[os.urandom(100_000 + piece) for piece in range(40)] for _ in range(6)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for batch in batches:
            for future in [pool.submit(writer.append, batch), pool.submit(writer.hash, batch)]:
                future.result()
    data = b"".join(b"".join(batch) for batch in batches)
    assert writer.digest() == hashlib.sha256(data).digest()
    assert writer.keep() == len(data)
    writer.close()
    assert files.part_path("u1").read_bytes() == data


def test_a_chunk_rolls_back_to_where_it_started(files: VolumeFiles) -> None:
    files.create_part("u1")
    path = str(files.part_path("u1"))
    first = PartWriter(path, 0, None)
    first.write(b"abc")
    assert first.keep() == 3
    first.close()
    with pytest.raises(OffsetMismatch) as mismatch:
        PartWriter(path, 0, None)
    assert mismatch.value.actual == 3
    second = PartWriter(path, 3, "sha1")
    second.write(b"garbage")
    second.roll_back()
    second.close()
    assert files.part_size("u1") == 3


def test_volumes_move_to_the_trash_and_back(files: VolumeFiles) -> None:
    _finish(files, "u1", b"x", "a")
    assert files.trash_volume(WS, VOL) is not None
    assert not files.volume_dir(WS, VOL).exists()
    files.restore_volume(WS, VOL)
    assert (files.volume_dir(WS, VOL) / "a").read_bytes() == b"x"
    files.trash_volume(WS, VOL)
    files.empty_trash()
    assert list((files.root / ".trash").iterdir()) == []


def test_a_folder_streams_as_a_valid_tar(files: VolumeFiles) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    _finish(files, "u1", data, "train/big.bin")
    _finish(files, "u2", "안녕".encode(), "train/한국어 이름.txt")
    (files.volume_dir(WS, VOL) / "train" / "link").symlink_to("/etc/passwd")
    archive = b"".join(tar_stream(files, WS, VOL, "train", "train"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = {m.name: m for m in tar.getmembers()}
        assert set(names) == {"train/big.bin", "train/한국어 이름.txt", "train/link"}
        assert names["train/link"].issym()
        assert names["train/link"].linkname == "/etc/passwd"
        big = tar.extractfile("train/big.bin")
        assert big is not None
        assert big.read() == data


def test_pieces_are_written_in_order_in_batches_of_any_size(files: VolumeFiles) -> None:
    files.create_part("u1")
    writer = PartWriter(str(files.part_path("u1")), 0, "sha256")
    pieces = [bytes([i % 251]) * (i % 7 + 1) for i in range(2500)]  # more than one pwritev can take
    writer.write_pieces(pieces[:3])
    writer.write_pieces(pieces[3:])
    data = b"".join(pieces)
    assert writer.keep() == len(data)
    writer.close()
    assert files.part_path("u1").read_bytes() == data
    assert writer.digest() == hashlib.sha256(data).digest()
