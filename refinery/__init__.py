"""Refinery: a continuous data-cleaning service for LLM pretraining corpora."""

__version__ = "0.1.0"
