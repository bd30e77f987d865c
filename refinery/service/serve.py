"""`refinery serve`: build the settings from flags and environment, run uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path

from refinery.errors import ConfigError
from refinery.service.auth import ENV_VAR, load_tokens


def cmd_serve(args) -> int:
    import uvicorn

    from refinery.service.app import Settings, create_app

    tokens = load_tokens(args.tokens_file)
    if not tokens:
        raise ConfigError(f"no API tokens configured: set {ENV_VAR}=token:role[,token:role] or pass --tokens-file")
    roots = []
    for r in args.input_root:
        p = Path(r).expanduser()
        if not p.is_dir():
            raise ConfigError(f"--input-root {r}: not a directory")
        roots.append(str(p.resolve()))
    for r in args.object_store_root or []:
        if not r.startswith("s3://") or len(r) <= 5:
            raise ConfigError(f"--object-store-root {r}: expected s3://bucket[/prefix]")
    if args.publish:
        from refinery.corpus.mirror import check_publish_option

        check_publish_option(args.publish)
    settings = Settings(
        store=args.store,
        input_roots=roots,
        tokens=tokens,
        address=args.address,
        concurrency=args.concurrency,
        max_body_bytes=args.max_body_bytes,
        max_upload_bytes=args.max_upload_bytes,
        max_queued=args.max_queued,
        inbox=args.inbox,
        inbox_pipeline=args.inbox_pipeline,
        object_roots=args.object_store_root or [],
        publish=args.publish,
        publish_retry_seconds=args.publish_retry_seconds,
        min_free_bytes=args.min_free_bytes,
    )
    from refinery.service.events import configure

    log_config = configure(args.log_format)
    _exit_zero_on_sigterm()
    app = create_app(settings)
    extra = {"log_config": log_config} if log_config is not None else {}
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=args.access_log, **extra)
    return 0


def _exit_zero_on_sigterm() -> None:
    """SIGTERM (`docker stop`, systemd) is the normal way to stop the service: exit 0, no traceback.

    uvicorn handles SIGTERM while it serves (stop accepting, finish requests, lifespan shutdown:
    the scheduler stops, a running batch stays `running` in the queue and is requeued at the next
    start) and then raises the signal again for the handler that was there before it: this one."""
    import signal
    import sys

    def stop(signum, frame) -> None:  # noqa: ARG001
        logging.getLogger("refinery.service").info("stopped by signal %d", signum)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)


def add_serve_parser(sub) -> None:
    s = sub.add_parser("serve", help="run the always-on service (HTTP API, scheduler, metrics, status page)")
    s.add_argument("--store", required=True, help="corpus store directory (queue database in <store>/state/)")
    s.add_argument("--input-root", action="append", required=True, metavar="DIR",
                   help="directory submitted sources must resolve inside (repeatable)")
    s.add_argument("--object-store-root", action="append", metavar="s3://BUCKET[/PREFIX]",
                   help="allow s3:// sources under this prefix (repeatable; endpoint/keys from REFINERY_S3_ENDPOINT, AWS_*)")
    s.add_argument("--publish", default=None, metavar="URI",
                   help="publish every commit to this URI (s3://bucket/prefix or a path; endpoint: "
                        "REFINERY_S3_ENDPOINT), the one training jobs read with Corpus(URI); retried while it is down")
    s.add_argument("--publish-retry-seconds", type=float, default=5.0,
                   help="first delay before retrying a failed publish (doubles, up to 12x)")
    s.add_argument("--min-free-bytes", type=int, default=64 << 20,
                   help="/readyz answers 503 while the store has less free space than this")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--address", default=None, help="Ray cluster address (default: start local Ray)")
    s.add_argument("--tokens-file", default=None, help=f"file of token:role lines (also ${ENV_VAR})")
    s.add_argument("--concurrency", type=int, default=2, help="batches running at once")
    s.add_argument("--inbox", default=None, metavar="DIR", help="folder whose new files become batches")
    s.add_argument("--inbox-pipeline", default="web-en", help="pipeline for inbox batches")
    s.add_argument("--max-body-bytes", type=int, default=64 * 1024, help="limit on JSON request bodies")
    s.add_argument("--max-upload-bytes", type=int, default=1 << 30, help="limit on one WARC upload")
    s.add_argument("--max-queued", type=int, default=100_000, help="refuse submissions (429) beyond this many queued")
    s.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    s.add_argument("--access-log", action="store_true", help="log every request")
    s.add_argument("--log-format", default="text", choices=["text", "json"],
                   help="json: one JSON object per log line (batch events carry event, batch_id and their fields)")
    s.set_defaults(fn=cmd_serve)
