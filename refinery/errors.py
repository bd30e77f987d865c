"""Exceptions with messages meant for operators, not stack traces."""

import re


class RefineryError(Exception):
    """Base class: the CLI prints these as one clear line and exits non-zero."""


class ConfigError(RefineryError):
    """A pipeline file is invalid: the message names the file, the key and the reason."""


class InputError(RefineryError):
    """An input path cannot be used at all (missing, unreadable, unknown format)."""


class StoreError(RefineryError):
    """The corpus store is missing, corrupt, or a commit cannot be made."""


class ModelError(RefineryError):
    """A model a stage needs is missing: the message names the command that builds it."""


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def one_line(err: BaseException, limit: int = 500) -> str:
    """`Type: message` on one line, for a batch's error field: a Ray task error is reduced to the
    exception raised inside the task (its remote traceback, colour codes included, belongs in the log)."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException) and type(err).__name__.startswith("RayTaskError"):
        err = cause
    message = _ANSI.sub("", str(err)).strip()
    first = next((line.strip() for line in message.splitlines() if line.strip()), "")
    text = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def validation_summary(errors: list[dict], whole: str = "value") -> str:
    """pydantic's `errors()` as one line, `loc.path: message; ...` (`whole` names an error about
    the whole value, whose location is empty): for API answers and mixture specs."""
    return "; ".join(f"{'.'.join(str(x) for x in e['loc']) or whole}: {e['msg']}" for e in errors)
