"""Secret settings leave the server's environment once read."""

from __future__ import annotations

import subprocess
import sys

from astrago.config import scrub_secrets


def test_secret_settings_are_removed_and_others_kept() -> None:
    env = {
        "ASTRAGO_ADMIN_PASSWORD": "s3cret",
        "ASTRAGO_DATABASE_URL": "postgresql://u:p@db/astrago",
        "ASTRAGO_OIDC_CLIENT_SECRET": "oidc",
        "ASTRAGO_PORT": "8080",
        "PATH": "/usr/bin",
    }
    removed = scrub_secrets(env)
    assert sorted(removed) == ["ASTRAGO_ADMIN_PASSWORD", "ASTRAGO_DATABASE_URL", "ASTRAGO_OIDC_CLIENT_SECRET"]
    assert env == {"ASTRAGO_PORT": "8080", "PATH": "/usr/bin"}


def test_the_process_environment_no_longer_shows_the_secret() -> None:
    """/proc/<pid>/environ shows the initial environment block: the value must be gone from it too."""
    code = (
        "import os\n"
        "from astrago.config import scrub_secrets\n"
        "scrub_secrets()\n"
        "initial = open('/proc/self/environ', 'rb').read()\n"
        "print(b'pw-in-environ' in initial, 'ASTRAGO_ADMIN_PASSWORD' in os.environ)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"ASTRAGO_ADMIN_PASSWORD": "pw-in-environ", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == "False False\n"
