"""The exec subresource's framing: window sizes on channel 4, the exit code from the v1.Status on 3."""

from __future__ import annotations

import json

from astrago.backends.kubernetes.exec_session import LOST_EXIT_CODE, exit_code_of, resize_message


def test_a_resize_is_width_and_height_on_channel_4() -> None:
    message = resize_message(rows=40, cols=132)
    assert message[0] == 4
    assert json.loads(message[1:]) == {"Width": 132, "Height": 40}


def test_the_exit_code_comes_from_the_status() -> None:
    assert exit_code_of(b'{"metadata": {}, "status": "Success"}') == 0
    failure = {
        "status": "Failure",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
    }
    assert exit_code_of(json.dumps(failure).encode()) == 3
    not_started = {"status": "Failure", "message": 'exec: "bash": executable file not found in $PATH'}
    assert exit_code_of(json.dumps(not_started).encode()) == 126
    assert exit_code_of(b"not json") == LOST_EXIT_CODE
