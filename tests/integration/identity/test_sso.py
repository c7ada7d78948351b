"""Single sign-on against a real OIDC provider, as users do it: the browser (Chromium through Playwright,
code + PKCE), the CLI's device grant, a CI script's client-credentials token; roles from IdP groups; changes
at the IdP (role removed, user disabled, signing key rotated); logout at both ends."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.integration.identity.conftest import ALICE, CAROL, Sso
from tests.support.browser import chromium
from tests.support.server import ASTRAGO, User

pytestmark = pytest.mark.slow


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _sign_in(page: Page, username: str, password: str) -> None:
    """The IdP's login page (oidc-provider's dev interaction: fields `login` and `password`)."""
    page.wait_for_selector("input[name=login]")
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def _confirm_consent(page: Page) -> None:
    page.wait_for_load_state()
    if "/interaction/" in page.url and "Authorize" in page.inner_text("body"):
        page.click("button[autofocus], button[type=submit]")


def _page_json(page: Page) -> Any:
    return json.loads(page.inner_text("body"))


def _bearer(sso: Sso, token: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, sso.server.url + path, headers=headers, timeout=30, **kwargs)


def _audit(sso: Sso, admin_token: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = _bearer(sso, admin_token, "GET", "/api/v1/audit").json()
    return records


def _admin_token(sso: Sso) -> str:
    admin = User(sso.server, "admin", sso.server.data_dir / "admin-home")
    admin.login("admin-password-1")
    assert admin.token
    return admin.token


def test_browser_sign_in_gives_roles_from_groups_with_csrf_protected_cookie_and_logout(sso: Sso) -> None:
    start = httpx.get(f"{sso.server.url}/api/v1/auth/oidc/login", timeout=10)
    assert start.status_code == 302
    authorize = start.headers["location"]
    assert authorize.startswith(f"{sso.idp.issuer}/auth?")
    for part in ("code_challenge=", "code_challenge_method=S256", "state=", "nonce=", "response_type=code"):
        assert part in authorize
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{sso.server.url}/api/v1/auth/oidc/login?next=/api/v1/auth/me")
        assert page.url.startswith(sso.idp.issuer)  # at the IdP's sign-in page
        _sign_in(page, "alice", ALICE["password"])
        page.wait_for_url(f"{sso.server.url}/api/v1/auth/me")
        me = _page_json(page)
        assert me["username"] == "alice"
        assert me["source"] == "oidc"
        assert me["admin"] is False
        # group /astrago/<workspace>/<role> → that role; the workspace is created; other groups ignored
        assert me["workspaces"] == {"ml": "manager", "vision": "viewer"}

        cookies = {c["name"]: c for c in context.cookies()}
        session = cookies["astrago_session"]
        assert session["httpOnly"] is True
        assert session["sameSite"] == "Lax"
        assert session["secure"] is False  # plain http on loopback; https makes it Secure
        assert cookies["astrago_csrf"]["httpOnly"] is False  # the console's script reads it

        # Unsafe methods with the cookie need the CSRF token; safe ones do not.
        body = {"name": "from-browser"}
        refused = page.request.post(f"{sso.server.url}/api/v1/auth/tokens", data=body)
        assert refused.status == 403
        assert "CSRF" in refused.json()["detail"]
        csrf = {"X-CSRF-Token": cookies["astrago_csrf"]["value"]}
        made = page.request.post(f"{sso.server.url}/api/v1/auth/tokens", data=body, headers=csrf)
        assert made.status == 201
        assert page.request.get(f"{sso.server.url}/api/v1/workspaces/ml").status == 200

        # Logout ends the session here and hands back the IdP's end-session URL (RP-initiated logout).
        out = page.request.post(f"{sso.server.url}/api/v1/auth/logout", headers=csrf)
        assert out.status == 200
        logout_url = out.json()["logout_url"]
        assert logout_url.startswith(f"{sso.idp.issuer}/session/end")
        assert "id_token_hint=" in logout_url
        assert page.request.get(f"{sso.server.url}/api/v1/auth/me").status == 401
        page.goto(logout_url)
        page.click("button[autofocus], button[type=submit]")  # the IdP asks to confirm the logout
        page.wait_for_url(f"{sso.server.url}/**")
        # The IdP's session is over too: signing in again asks for the password.
        page.goto(f"{sso.server.url}/api/v1/auth/oidc/login?next=/api/v1/auth/me")
        page.wait_for_selector("input[name=login]")


def test_console_sign_in_with_sso_shows_the_roles_from_groups_and_signs_out_at_the_idp(sso: Sso) -> None:
    """The console as a person uses it: "Sign in with SSO" on its sign-in page, the IdP's login, back in
    the console on the page asked for, with the workspaces and roles alice's groups give; the console's
    unsafe requests carry the CSRF token; signing out ends the IdP's session too."""
    with chromium() as browser:
        page = browser.new_context().new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{sso.server.url}/workspaces")
        expect(page.get_by_role("heading", name="Sign in to AstraGo")).to_be_visible()
        page.get_by_role("link", name="Sign in with SSO").click()
        _sign_in(page, "alice", ALICE["password"])
        _confirm_consent(page)
        page.wait_for_url(f"{sso.server.url}/workspaces")
        expect(page.locator("[data-workspace='ml']")).to_be_visible()
        expect(page.locator("[data-workspace='vision']")).to_be_visible()
        expect(page.get_by_label("Signed in as")).to_have_text("alice")

        page.get_by_role("button", name="Account").click()
        menu = page.get_by_role("menu")
        expect(menu).to_contain_text("single sign-on")
        expect(menu.get_by_test_id("platform-role")).to_have_text("No platform role")
        expect(menu.locator("[data-workspace-role='ml']")).to_contain_text("manager")
        expect(menu.locator("[data-workspace-role='vision']")).to_contain_text("viewer")
        expect(menu.locator("[data-workspace-role]")).to_have_count(2)  # /other-app/admins gives nothing

        # An unsafe request from the console (cookie session): it sends the CSRF token, so it succeeds.
        menu.get_by_role("menuitem", name="API tokens and sessions").click()
        page.get_by_label("Name").fill("from-console")
        page.get_by_label("Read-only (GET only)").check()
        page.get_by_role("button", name="Create token").click()
        expect(page.get_by_test_id("new-token")).to_contain_text("Read-only")
        expect(page.locator("[data-token='from-console']")).to_contain_text("read-only")

        page.get_by_role("button", name="Account").click()
        page.get_by_role("menuitem", name="Sign out").click()
        page.wait_for_url(f"{sso.idp.issuer}/**")
        page.click("button[autofocus], button[type=submit]")  # the IdP asks to confirm the logout
        expect(page.get_by_role("heading", name="Sign in to AstraGo")).to_be_visible()
        assert page.url.startswith(sso.server.url)
        # Both sessions are over: the console's cookie is refused and the IdP asks for the password again.
        assert page.request.get(f"{sso.server.url}/api/v1/auth/me").status == 401
        page.get_by_role("link", name="Sign in with SSO").click()
        page.wait_for_selector("input[name=login]")


def test_tampered_state_and_wrong_password_are_refused(sso: Sso) -> None:
    response = httpx.get(
        f"{sso.server.url}/api/v1/auth/oidc/callback", params={"code": "x", "state": "forged"}, timeout=10
    )
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    with chromium() as browser:
        page = browser.new_page()
        page.goto(f"{sso.server.url}/api/v1/auth/oidc/login")
        _sign_in(page, "alice", "not-her-password")
        assert "invalid username or password" in page.inner_text("body")
        # A browser coming back with a forged state, or with the IdP's refusal, lands on the console's
        # sign-in page, which says why.
        page.goto(f"{sso.server.url}/api/v1/auth/oidc/callback?code=x&state=forged")
        page.wait_for_url(f"{sso.server.url}/sign-in?**")
        expect(page.get_by_role("alert")).to_contain_text("this sign-in is unknown or has expired")
        page.goto(f"{sso.server.url}/api/v1/auth/oidc/callback?state=s&error=access_denied")
        expect(page.get_by_role("alert")).to_contain_text("did not sign you in: access_denied")
        expect(page.get_by_role("link", name="Sign in with SSO")).to_be_visible()


def test_role_removed_or_user_disabled_at_the_idp_takes_effect_at_the_next_request(sso: Sso) -> None:
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{sso.server.url}/api/v1/auth/oidc/login?next=/api/v1/auth/me")
        _sign_in(page, "carol", CAROL["password"])
        page.wait_for_url(f"{sso.server.url}/api/v1/auth/me")
        assert _page_json(page)["workspaces"] == {"ml": "manager", "vision": "viewer"}

        sso.idp.set_user("carol", groups=["/astrago/ml/member"], realm_roles=["astrago-admin"])
        me = page.request.get(f"{sso.server.url}/api/v1/auth/me").json()
        assert me["workspaces"] == {"ml": "member"}  # vision gone, ml downgraded
        assert me["admin"] is True

        admin_token = _admin_token(sso)
        synced = [
            r for r in _audit(sso, admin_token) if r["action"] == "user.roles.sync" and r["actor"] == "carol"
        ]
        assert synced
        assert "removed from vision" in synced[0]["detail"]
        assert "member in ml" in synced[0]["detail"]
        assert "platform admin" in synced[0]["detail"]

        sso.idp.set_user("carol", disabled=True)
        assert page.request.get(f"{sso.server.url}/api/v1/auth/me").status == 401
        ended = [
            r for r in _audit(sso, admin_token) if r["action"] == "auth.sso.ended" and r["actor"] == "carol"
        ]
        assert ended
        assert ended[0]["actor"] == "carol"


def test_cli_device_login_and_ci_client_credentials_token(sso: Sso, tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    cli = subprocess.Popen(
        [*ASTRAGO, "login", "--sso", "--no-browser", "--url", sso.server.url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert cli.stderr is not None
        first = cli.stderr.readline()
        link = re.search(r"open (\S+)", first)
        assert link, first
        with chromium() as browser:
            page = browser.new_page()
            page.goto(link.group(1), wait_until="domcontentloaded")
            page.click("button[autofocus]")  # confirm the code shown in the terminal
            _sign_in(page, "bob", "bob-password-1")
            _confirm_consent(page)  # the IdP asks native (CLI) clients to confirm
            page.wait_for_selector("text=Sign-in Success", timeout=20_000)
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, err
    assert "Logged in to" in out
    assert "as bob" in out
    assert "expires" in out
    config = json.loads((tmp_path / "home" / "astrago" / "cli.json").read_text())
    assert config["token"].startswith("ast_")  # an AstraGo session, not the IdP's tokens
    whoami = subprocess.run(
        [*ASTRAGO, "whoami", "--json"],
        env={**env, "ASTRAGO_URL": sso.server.url},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(whoami.stdout)["admin"] is True  # realm role astrago-admin

    # A CI script: a client-credentials access token from the IdP, used as a bearer token.
    token = sso.idp.client_credentials_token()
    me = _bearer(sso, token, "GET", "/api/v1/auth/me")
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "service-account-ci-bot"
    assert me.json()["workspaces"] == {"ml": "member"}
    job = {"workspace": "ml", "command": ["true"], "resources": {"cpu": "100m", "memory": "64Mi"}}
    assert _bearer(sso, token, "POST", "/api/v1/workloads", json=job).status_code == 201
    # The issuer and signature are checked: a token of another issuer, or altered, is refused.
    header, payload, signature = token.split(".")
    assert (
        _bearer(sso, f"{header}.{payload}.{signature[:-4]}AAAA", "GET", "/api/v1/auth/me").status_code == 401
    )


def test_cli_login_with_a_browser_redirect_to_the_loopback(sso: Sso, tmp_path: Path) -> None:
    """Where the device grant is missing or unwanted: code + PKCE, the IdP redirecting to 127.0.0.1."""
    env = {"XDG_CONFIG_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    cli = subprocess.Popen(
        [*ASTRAGO, "login", "--sso", "--browser-redirect", "--no-browser", "--url", sso.server.url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert cli.stderr is not None
        first = cli.stderr.readline()
        link = re.search(r"open (\S+)", first)
        assert link, first
        assert "code_challenge=" in link.group(1)
        assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in link.group(1)
        with chromium() as browser:
            page = browser.new_page()
            page.goto(link.group(1))
            _sign_in(page, "alice", ALICE["password"])
            _confirm_consent(page)
            page.wait_for_selector("text=signed in", timeout=20_000)
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, err
    assert "as alice" in out


def test_signing_key_rotation_at_the_idp(sso: Sso) -> None:
    before = sso.idp.client_credentials_token()
    assert _bearer(sso, before, "GET", "/api/v1/auth/me").status_code == 200
    new_kid = sso.idp.rotate_key()
    after = sso.idp.client_credentials_token()
    header = json.loads(_b64(after.split(".")[0]))
    assert header["kid"] == new_kid
    assert _bearer(sso, after, "GET", "/api/v1/auth/me").status_code == 200  # new key fetched
    assert _bearer(sso, before, "GET", "/api/v1/auth/me").status_code == 200  # old key still published


def test_sso_config_is_public_and_says_what_the_cli_needs(sso: Sso) -> None:
    config = httpx.get(f"{sso.server.url}/api/v1/auth/oidc/config", timeout=10).json()
    assert config["enabled"] is True
    assert config["issuer"] == sso.idp.issuer
    assert config["device_authorization_endpoint"].startswith(sso.idp.issuer)
