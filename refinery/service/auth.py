"""Bearer tokens with roles, configured by environment or file, compared in constant time.

Roles are ordered: `reader` may read (list/get batches, commits, pipelines);
`operator` may also submit, upload, cancel and retry.  A token grants its role
and every role below it.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from refinery.errors import ConfigError

ROLES = {"reader": 1, "operator": 2}
ENV_VAR = "REFINERY_TOKENS"
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Principal:
    role: str
    name: str  # a non-secret label for logs: the token's first 4 characters


def parse_tokens(text: str, origin: str) -> dict[str, str]:
    """Parse `token:role` pairs separated by commas or newlines (`#` starts a comment)."""
    tokens: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]
        for item in line.split(","):
            item = item.strip()
            if not item:
                continue
            token, sep, role = item.rpartition(":")
            token, role = token.strip(), role.strip()
            where = f"{origin} line {lineno}" if "\n" in text else origin
            if not sep or not token:
                raise ConfigError(f"{where}: expected token:role, got an entry without ':'")
            if role not in ROLES:
                raise ConfigError(f"{where}: unknown role {role!r} (known: {', '.join(ROLES)})")
            if len(token) < MIN_TOKEN_LENGTH:
                raise ConfigError(f"{where}: token too short (at least {MIN_TOKEN_LENGTH} characters)")
            tokens[token] = role
    return tokens


def load_tokens(tokens_file: str | None = None, env: dict | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    tokens: dict[str, str] = {}
    if env.get(ENV_VAR):
        tokens.update(parse_tokens(env[ENV_VAR], ENV_VAR))
    if tokens_file:
        path = Path(tokens_file)
        try:
            tokens.update(parse_tokens(path.read_text(encoding="utf-8"), str(path)))
        except OSError as err:
            raise ConfigError(f"{tokens_file}: cannot read tokens file: {err.strerror or err}") from None
    return tokens


class TokenAuth:
    def __init__(self, tokens: dict[str, str]) -> None:
        self._tokens = [(t.encode(), r) for t, r in tokens.items()]

    def authenticate(self, presented: str) -> Principal | None:
        """Compare against every configured token (no early exit), so timing reveals nothing."""
        given = presented.encode()
        found: str | None = None
        for token, role in self._tokens:
            if hmac.compare_digest(token, given):
                found = role
        return Principal(found, presented[:4] + "…") if found else None

    @staticmethod
    def allows(principal: Principal, role: str) -> bool:
        return ROLES[principal.role] >= ROLES[role]
