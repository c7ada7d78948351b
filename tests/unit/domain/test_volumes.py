"""Volume names, slugs, sizes, paths inside a volume and `--volume` specs."""

from __future__ import annotations

import pytest

from astrago.domain.volumes import (
    MountRequest,
    VolumeInputError,
    env_name,
    format_bytes,
    local_mount_target_problem,
    normalise_name,
    parse_mount,
    parse_size_bytes,
    relative_path,
    slug_of,
    unique_slug,
)


def test_names_keep_spaces_and_any_language_but_not_separators() -> None:
    assert normalise_name("  한국어 데이터 v2 ") == "한국어 데이터 v2"
    assert normalise_name("e\u0301t\u00e9") == "\u00e9t\u00e9"  # NFC: one way to write each name
    for bad in ("", "   ", "a:b", "a/b", "tab\there", "x" * 129):
        with pytest.raises(VolumeInputError):
            normalise_name(bad)


def test_slugs_are_ascii_unique_and_give_env_names() -> None:
    assert slug_of("ImageNet 2012 (train)") == "imagenet-2012-train"
    assert slug_of("Café crème") == "cafe-creme"
    assert slug_of("데이터") == ""
    assert unique_slug("데이터", "abc12345xyz", set()) == "v-abc12345"
    assert unique_slug("imagenet", "abc12345xyz", {"imagenet"}) == "imagenet-abc12345"
    assert env_name("imagenet-2012-train") == "ASTRAGO_VOLUME_IMAGENET_2012_TRAIN"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10Gi", 10 * 1024**3), ("500G", 500 * 1000**3), ("500GB", 500 * 1000**3), ("1.5Ki", 1536), ("42", 42)],
)
def test_sizes(text: str, expected: int) -> None:
    assert parse_size_bytes(text) == expected


def test_bad_sizes_say_what_to_write() -> None:
    with pytest.raises(VolumeInputError, match=r"use e\.g\. 500Mi"):
        parse_size_bytes("ten gigs")
    with pytest.raises(VolumeInputError, match="negative"):
        parse_size_bytes(-1)
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(12) == "12 B"


def test_paths_stay_inside_the_volume() -> None:
    assert relative_path("/train/a.txt") == "train/a.txt"
    assert relative_path("train//./a.txt") == "train/a.txt"
    assert relative_path("/etc/passwd") == "etc/passwd"  # a leading / is the volume's root, not the host's
    assert relative_path("/", allow_root=True) == ""
    for bad in ("../x", "a/../../x", "a/..", "/", "a\x00b", "x/" + "y" * 256):
        with pytest.raises(VolumeInputError):
            relative_path(bad)


def test_mount_specs() -> None:
    assert parse_mount("ds:/data") == MountRequest("ds", "/data", read_only=False)
    assert parse_mount("데이터 셋:/data/x/:ro") == MountRequest("데이터 셋", "/data/x", read_only=True)
    assert parse_mount("ds:data:rw") == MountRequest("ds", "data", read_only=False)
    assert parse_mount("ds:/data:ro").text == "ds:/data:ro"
    for bad in ("ds", "ds:", ":/data", "ds:/", "ds:/a/../../etc", "ds:/a:b:ro", "ds:/a:x"):
        with pytest.raises(VolumeInputError):
            parse_mount(bad)


def test_local_mounts_stay_out_of_system_folders() -> None:
    assert local_mount_target_problem("/data") is None
    assert local_mount_target_problem("/usrdata") is None  # a prefix of a name is not the folder
    assert local_mount_target_problem("/etc") == "/etc is a system folder that workloads need as it is"
    assert "lies inside /usr" in (local_mount_target_problem("/usr/local/data") or "")
    assert "lies inside /proc" in (local_mount_target_problem("/proc/1") or "")
