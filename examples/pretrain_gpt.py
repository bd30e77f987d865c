#!/usr/bin/env python
"""Train a small GPT on a refinery corpus store through the training feed.

    python examples/pretrain_gpt.py --store STORE_OR_S3_URI [--steps 300] [--workers 4] [--mixture FILE]

Runs on CUDA when available (bf16 autocast), CPU otherwise.  Every --log-every
steps it prints loss, tokens/s and the fraction of step time the loop spent
waiting for the data loader; the last line is a JSON summary.  --checkpoint
saves model, optimizer and loader state (a resumed run continues the token
stream exactly: refinery.corpus.dataset).  Without --tokenizer, a byte-level
BPE tokenizer is trained in-process on the snapshot's text (nothing downloaded).
--mixture FILE draws the stream as a mixture spec says (groups by language, bucket,
domain, commit; weights; repeat caps: docs/corpus.md, "Mixtures"), e.g.
examples/mixture.yaml (its groups' target shares are printed at the start).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from refinery.corpus import Corpus  # noqa: E402
from refinery.corpus.dataset import CorpusDataset, StatefulLoader  # noqa: E402

EOT = "<|endoftext|>"


class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab: int, ctx: int, d: int, layers: int, heads: int) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight  # tied embeddings
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:  # GPT-2 initialisation: small weights keep the first logits near uniform
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x))


def train_tokenizer(corpus: Corpus, commit: int | None, vocab: int, out: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    texts = (t for b in corpus.iter_batches(columns=["text"], commit=commit) for t in b.column("text").to_pylist() if t)
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=[EOT],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    out.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(out))
    return tok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True, help="corpus store path or s3://bucket/prefix")
    p.add_argument("--commit", type=int, default=None, help="snapshot to train on (default: latest)")
    p.add_argument("--follow", action="store_true", help="keep reading new commits as they appear")
    p.add_argument("--filter", default=None, help='JSON dict filter, e.g. \'{"language": "en"}\'')
    p.add_argument("--mixture", default=None, metavar="FILE", help="mixture spec (YAML): weighted groups, docs/corpus.md")
    p.add_argument("--tokenizer", default=None, help="tokenizer.json (default: train a BPE on the snapshot)")
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--epochs", type=int, default=None, help="passes over the snapshot (default: repeat until --steps)")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--warmup-steps", type=int, default=10, help="steps left out of the steady-state figures")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--checkpoint", default=None, help="save model/optimizer/loader state here at the end")
    p.add_argument("--resume", action="store_true", help="start from --checkpoint")
    p.add_argument("--out", default="runs/pretrain_gpt", help="directory for the trained tokenizer")
    p.add_argument("--device", default=None, help="cuda / cpu (default: cuda when available)")
    args = p.parse_args(argv)

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(args.seed)
    corpus = Corpus(args.store)
    commit = None if args.follow else (args.commit or corpus.latest())
    if args.tokenizer:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(args.tokenizer)
    else:
        t0 = time.perf_counter()
        tokenizer = train_tokenizer(corpus, commit, args.vocab_size, Path(args.out) / "tokenizer.json")
        print(f"trained BPE tokenizer ({tokenizer.get_vocab_size()} tokens) in {time.perf_counter() - t0:.1f}s", flush=True)

    if args.mixture:
        from refinery.corpus.mixture import MixtureSpec

        spec = MixtureSpec.load(args.mixture)
        print(f"mixture {args.mixture} ({spec.share}): " + ", ".join(f"{g.name} {w:.1%}" for g, w in zip(spec.groups, spec.shares)),
              flush=True)
    ctx = args.seq_len
    dataset = CorpusDataset(corpus, tokenizer, ctx + 1, commit=commit, follow=args.follow, seed=args.seed,
                            epochs=args.epochs,
                            filter=json.loads(args.filter) if args.filter else None, poll_interval=5.0,
                            mixture=args.mixture)
    loader = StatefulLoader(dataset, batch_size=args.batch_size, num_workers=args.workers,
                            pin_memory=device.type == "cuda",
                            prefetch_factor=4 if args.workers else None, persistent_workers=False)
    model = GPT(tokenizer.get_vocab_size(), ctx, args.d_model, args.layers, args.heads).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.1, betas=(0.9, 0.95))
    step = 0
    if args.resume and args.checkpoint and Path(args.checkpoint).exists():
        ck = torch.load(args.checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        loader.load_state_dict(ck["loader"])
        step = ck["step"]
        print(f"resumed at step {step}", flush=True)
    fwd = torch.compile(model) if args.compile else model
    n_params = sum(p.numel() for p in model.parameters())
    print(f"device={device} params={n_params / 1e6:.1f}M seq_len={ctx} batch={args.batch_size} workers={args.workers} "
          f"snapshot={'follow' if args.follow else commit}", flush=True)

    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    tokens_per_step = args.batch_size * ctx
    it = iter(loader)
    t_start = time.perf_counter()
    win_wait = win_time = 0.0
    steady = {"wait": 0.0, "time": 0.0, "steps": 0}
    win_steps, loss_val, last = 0, float("nan"), time.perf_counter()
    while step < args.steps:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:  # --epochs passes done (or follow mode idle): the data ends the run
            print(f"data exhausted after {step} steps", flush=True)
            break
        x = batch["input_ids"].to(device, non_blocking=True)
        wait = time.perf_counter() - t0
        lr = args.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(step, args.steps) / args.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        with autocast:
            logits = fwd(x[:, :-1])
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        win_steps += 1
        if step % args.log_every == 0 or step == args.steps:
            loss_val = loss.item()  # synchronises: the window's time includes the GPU's work
        now = time.perf_counter()
        step_time = now - last
        last = now
        win_wait += wait
        win_time += step_time
        if step > args.warmup_steps:
            steady["wait"] += wait
            steady["time"] += step_time
            steady["steps"] += 1
        if step % args.log_every == 0 or step == args.steps:
            print(f"step {step:5d}  loss {loss_val:.3f}  tokens/s {win_steps * tokens_per_step / win_time:,.0f}  "
                  f"data wait {100 * win_wait / win_time:.1f}%", flush=True)
            win_wait = win_time = 0.0
            win_steps = 0
    total = time.perf_counter() - t_start
    summary = {
        "device": str(device), "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
        "steps": step, "final_loss": round(loss_val, 4), "seconds": round(total, 2),
        "tokens_per_s": round(steady["steps"] * tokens_per_step / steady["time"]) if steady["time"] else None,
        "data_wait_frac": round(steady["wait"] / steady["time"], 4) if steady["time"] else None,
        "params_m": round(n_params / 1e6, 2), "batch": args.batch_size, "seq_len": ctx, "workers": args.workers,
    }
    if args.checkpoint:
        Path(args.checkpoint).parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "loader": loader.state_dict(), "step": step},
                   args.checkpoint)
    print("summary " + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
