"""The always-on service: HTTP API, durable queue, scheduler on Ray, metrics, status page.

`refinery serve` builds it (serve.py); the library underneath is refinery.batch.
"""
