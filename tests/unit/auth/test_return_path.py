from __future__ import annotations

import pytest

from astrago.api.deps import csrf_token
from astrago.services.sso import safe_return_path


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/workloads?ws=ml-a", "/workloads?ws=ml-a"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/", "/"),  # never an open redirect off this server
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("workloads", "/"),
    ],
)
def test_sign_in_returns_only_to_a_path_on_this_server(given: str | None, kept: str) -> None:
    assert safe_return_path(given) == kept


def test_the_csrf_token_is_bound_to_its_session() -> None:
    assert csrf_token("ast_a") == csrf_token("ast_a")
    assert csrf_token("ast_a") != csrf_token("ast_b")
    assert "ast_a" not in csrf_token("ast_a")
