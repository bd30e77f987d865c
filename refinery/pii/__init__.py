"""PII detection and redaction (the `pii` stage's logic, plain Python over strings)."""

from refinery.pii.detect import KINDS, Span, find_pii, redact

__all__ = ["KINDS", "Span", "find_pii", "redact"]
