"""Object names are deterministic, valid DNS labels, and distinct for distinct workload ids."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from astrago.backends.kubernetes.naming import label_value, object_name

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def test_simple_ids_stay_readable() -> None:
    assert object_name("wl-42") == "ag-wl-42"
    assert label_value("wl-42") == "wl-42"


@given(st.text(min_size=1, max_size=200))
def test_any_id_gives_valid_names(workload_id: str) -> None:
    name = object_name(workload_id)
    assert DNS_1035.match(name)
    assert len(name) <= 40
    assert object_name(workload_id) == name
    value = label_value(workload_id)
    assert LABEL_VALUE.match(value)
    assert len(value) <= 63


def test_ids_that_differ_only_in_case_or_length_get_different_names() -> None:
    assert object_name("01HABC") != object_name("01habc")
    long_a, long_b = "x" * 100 + "a", "x" * 100 + "b"
    assert object_name(long_a) != object_name(long_b)
