"""`refinery decont build` and `refinery decont check`."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

DEFAULT_SETS = "../shared/data/decontamination/decontam_texts.jsonl.gz"


def cmd_build(args) -> int:
    from refinery.decont.index import IndexParams, build_index, items_from_files, save_index
    from refinery.models import file_sha256
    from refinery.stages.decontaminate import DEFAULT_INDEX

    paths = [Path(p) for p in args.sets]
    params = IndexParams(args.n, args.char_n, args.min_item_tokens, tuple(args.char_languages))
    index, stats = build_index(items_from_files(paths), params)
    out = Path(args.out) if args.out else DEFAULT_INDEX
    sources = [{"path": p.name, "sha256": file_sha256(str(p)), "bytes": p.stat().st_size} for p in paths]
    command = "refinery " + shlex.join(args.argv)
    m = save_index(index, stats, sources, out, command)
    size = sum(f["bytes"] for f in m["files"].values())
    print(f"wrote {out}: {m['grams']} n-grams of {m['items']} items, {size / 1e6:.2f} MB (version {m['version']})")
    for bench, s in m["sets"].items():
        print(f"  {bench:<12} items={s['items']:<6} indexed={s['indexed']:<6} skipped_short={s['skipped_short']}")
    return 0


def cmd_check(args) -> int:
    """Print which item (if any) each line of a text file would be caught by (for operators)."""
    from refinery.decont.index import doc_kind, load_index
    from refinery.decont.ngrams import fold
    from refinery.stages.decontaminate import index_dir

    index = load_index(index_dir(args.index))
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    norm = fold(text)
    counts = index.query([norm], [doc_kind(norm, None, index.params.char_languages)])[0]
    for ref, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]:
        print(f"{index.items[ref]}  {n} shared n-grams")
    if not counts:
        print("clean")
    return 0


def add_decont_parser(sub) -> None:
    d = sub.add_parser("decont", help="benchmark decontamination indexes")
    dsub = d.add_subparsers(dest="decont_command", required=True)
    b = dsub.add_parser("build", help="build an n-gram index from evaluation-set JSONL files (hashes and ids only)")
    b.add_argument("--sets", nargs="+", default=[DEFAULT_SETS], metavar="FILE",
                   help="JSONL(.gz) files, one {benchmark, split, id, text} a line (default: %(default)s)")
    b.add_argument("--out", default=None, help="index directory (default: the shipped refinery/models/default/decont/benchmarks)")
    b.add_argument("--n", type=int, default=13, help="words per n-gram")
    b.add_argument("--char-n", type=int, default=13, help="characters per n-gram for --char-languages")
    b.add_argument("--min-item-tokens", type=int, default=8, help="shorter items are not indexed")
    b.add_argument("--char-languages", nargs="*", default=["zh", "ja"])
    b.set_defaults(fn=cmd_build)
    c = dsub.add_parser("check", help="which benchmark items a text file shares n-grams with")
    c.add_argument("file", help="text file, or - for stdin")
    c.add_argument("--index", default="default")
    c.set_defaults(fn=cmd_check)
