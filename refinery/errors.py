"""Exceptions with messages meant for operators, not stack traces."""


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
