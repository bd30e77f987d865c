"""Fault injection for the crash tests: named points where a run can be made to die abruptly.

A test sets the point's environment variable (its value is the exit code) and checks that a
re-run yields exactly the output of a clean run (docs/reliability.md lists the points)."""

from __future__ import annotations

import os


def crash_point(env: str) -> None:
    """Exit at once, without cleanup, when `env` is set."""
    if os.environ.get(env):
        os._exit(int(os.environ[env]))
