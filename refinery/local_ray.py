"""Local Ray that only this process can reach.

A default `ray.init()` binds every Ray server (GCS, raylet, object manager,
workers, agents) to the machine's address, and its processes inherit the
driver's environment, API tokens and object-store keys included.  Anyone who
reaches the host could attach a driver and run code as the service's user.
So the local cluster Refinery starts is:

- loopback only: the node's address is 127.0.0.1, which makes Ray bind its
  servers there (Ray's single-node setting `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`);
- token-authenticated (Ray's `RAY_AUTH_MODE=token`) with a fresh random token
  per process, kept in a 0600 file in a private directory (not Ray's default
  `~/.ray/auth_token`, which outlives the process);
- started from an environment without secrets: variables that look like
  credentials are removed while Ray's processes are spawned (they inherit the
  environment of that moment) and put back for the driver afterwards.

A cluster address (`--address`) is the operator's choice: its exposure and
authentication are set where the cluster is started (docs/operations.md).
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import re
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import ray

logger = logging.getLogger(__name__)

# Names of environment variables that hold credentials: Refinery's API tokens, object-store keys
# (AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, ...), and anything named like a password or key.
# Matched as whole underscore-separated words, so TOKENIZERS_PARALLELISM is not one.
SECRET_NAME = re.compile(
    r"(^|_)(TOKENS?|SECRETS?|PASSWORDS?|PASSWD|CREDENTIALS?|API_?KEYS?|ACCESS_KEY|PRIVATE_KEY)(_|$)", re.IGNORECASE
)
# Ray's own authentication settings name a mode and a file path, not a secret: its processes need them.
RAY_AUTH_SETTINGS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH")

_token_dir: str | None = None


def secret_names(env: dict[str, str] | os._Environ) -> list[str]:
    """Variables that must not reach Ray's processes."""
    return sorted(k for k in env if SECRET_NAME.search(k) and k not in RAY_AUTH_SETTINGS)


def _token_path() -> str:
    """This process's Ray token file (created once, removed at exit)."""
    global _token_dir
    if _token_dir is None:
        _token_dir = tempfile.mkdtemp(prefix="refinery-ray-auth-")  # mode 0700
        atexit.register(shutil.rmtree, _token_dir, True)
        fd = os.open(Path(_token_dir) / "token", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return str(Path(_token_dir) / "token")


@contextmanager
def _spawn_environment(extra: dict[str, str]) -> Iterator[None]:
    """The environment Ray's processes are started with: secrets out, `extra` in; restored after."""
    removed = {k: os.environ.pop(k) for k in secret_names(os.environ)}
    previous = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        os.environ.update(removed)


@contextmanager
def _loopback_node() -> Iterator[None]:
    """Make Ray take 127.0.0.1 as this node's address while it starts.

    Ray reads `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER` once, when it is imported, into
    `ray_constants.ENABLE_RAY_CLUSTER`; Refinery imports Ray before it knows whether it
    will run locally, so the setting is applied to that constant for the start-up."""
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before


def _no_implicit_init() -> None:
    """Once Ray is shut down (at exit, say), a Ray call in a lingering thread must fail, not start
    a new default cluster (every interface, no token) the way Ray's auto-init would.  Ray reads
    `RAY_ENABLE_AUTO_CONNECT` when it is imported; this applies the same setting afterwards."""
    from ray._private import auto_init_hook

    auto_init_hook.enable_auto_connect = False


def init_local_ray(**kwargs) -> None:
    """`ray.init` of a new local cluster, loopback only, token-authenticated, without secrets.

    Raises RuntimeError if Ray did not take the loopback address (a Ray upgrade changing
    how the node address is chosen must fail here, not expose the cluster)."""
    extra = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is None or mode.lower() == "token":
        # Ray turns token mode on itself for a new local cluster when RAY_AUTH_MODE is unset (and
        # refreshes its cached setting: setting the variable here would not).  The path stays in
        # the driver's environment: a later ray.init in this process must find the same file.
        os.environ["RAY_AUTH_TOKEN_PATH"] = _token_path()
    else:
        logger.warning("RAY_AUTH_MODE=%s: local Ray starts without token authentication", mode)
    with _spawn_environment(extra), _loopback_node():
        ray.init(**kwargs)
    _no_implicit_init()
    node_ip = ray.util.get_node_ip_address()
    if not ipaddress.ip_address(node_ip).is_loopback:
        ray.shutdown()
        raise RuntimeError(f"local Ray took the node address {node_ip}, not loopback: refusing to run exposed")
