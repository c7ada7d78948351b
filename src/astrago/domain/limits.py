"""What one process launch can carry on Linux, as pure rules: the API checks them at submit, so a workload
that the kernel would refuse at `execve` ("Argument list too long") is never accepted in the first place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# Linux refuses a single argument or `KEY=value` string longer than MAX_ARG_STRLEN (32 pages of 4 KiB),
# the terminating NUL included.
MAX_EXEC_STRING_BYTES = 32 * 4096 - 1
# All argv and env strings together share ARG_MAX (a quarter of the stack limit: 2 MiB by default) with
# the platform's own variables and the server's environment, so a workload gets a fixed part of it.
MAX_EXEC_TOTAL_BYTES = 512 * 1024
MAX_ARGV_ITEMS = 4096
MAX_ENV_ENTRIES = 1024
# PATH_MAX, the terminating NUL excluded.
MAX_PATH_BYTES = 4095


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass")) + 1  # execve copies each string with its NUL


def exec_size_problem(argv: Sequence[str], env: Mapping[str, str]) -> str | None:
    """Why the kernel would refuse this argv and environment, or None when it fits."""
    for where, text in [  # checked first: the sizes below would count a NUL as any other byte
        *((f"command[{i}]", a) for i, a in enumerate(argv)),
        *((f"env.{key}", key + value) for key, value in env.items()),
    ]:
        if "\x00" in text:
            return f"{where} contains a NUL byte, which no process argument or variable can hold"
    if len(argv) > MAX_ARGV_ITEMS:
        return f"command has {len(argv)} arguments; at most {MAX_ARGV_ITEMS} are allowed"
    if len(env) > MAX_ENV_ENTRIES:
        return f"env has {len(env)} variables; at most {MAX_ENV_ENTRIES} are allowed"
    total = 0
    for index, arg in enumerate(argv):
        size = _size(arg)
        if size > MAX_EXEC_STRING_BYTES + 1:
            return (
                f"command[{index}] is {size - 1} bytes; one argument may be at most {MAX_EXEC_STRING_BYTES}"
            )
        total += size
    for key, value in env.items():
        size = _size(f"{key}={value}")
        if size > MAX_EXEC_STRING_BYTES + 1:
            return (
                f"env.{key} is {size - 1} bytes with its name; one variable may be at most "
                f"{MAX_EXEC_STRING_BYTES}"
            )
        total += size
    if total > MAX_EXEC_TOTAL_BYTES:
        return (
            f"command and env together are {total} bytes; a workload may pass at most {MAX_EXEC_TOTAL_BYTES} "
            "(put large inputs in a file instead)"
        )
    return None
