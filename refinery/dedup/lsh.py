"""LSH banding: a signature becomes `bands` 64-bit keys; equal key in any band = candidate.

Two documents with Jaccard similarity J share at least one band with
probability  P(J) = 1 - (1 - J**rows)**bands  (the S-curve).  docs/dedup.md
tabulates it for the defaults.
"""

from __future__ import annotations

import math

import numpy as np

from refinery.dedup.minhash import fmix64

U64 = np.uint64
_P = np.uint64(0x9E3779B185EBCA87)


def band_hashes(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 keys: band j hashes signature slots [j*rows, (j+1)*rows) and j itself."""
    sig = np.ascontiguousarray(signatures[:, : bands * rows]).astype(U64)
    n = sig.shape[0]
    out = np.empty((n, bands), dtype=U64)
    with np.errstate(over="ignore"):
        for j in range(bands):
            h = np.full(n, U64(j + 1) * _P, dtype=U64)
            for k in range(rows):
                h = fmix64(h ^ sig[:, j * rows + k])
            out[:, j] = h
    return out


def candidate_probability(jaccard: float, bands: int, rows: int) -> float:
    """P(two documents with this Jaccard similarity share at least one band)."""
    return 1.0 - (1.0 - jaccard**rows) ** bands


def threshold(bands: int, rows: int) -> float:
    """Where the S-curve is steepest, approximately (1/bands)**(1/rows)."""
    return (1.0 / bands) ** (1.0 / rows)


def _integrate(f, a: float, b: float, steps: int = 2000) -> float:
    h = (b - a) / steps
    return sum(f(a + (i + 0.5) * h) for i in range(steps)) * h


def false_positive_area(t: float, bands: int, rows: int) -> float:
    """Integral of P(J) over J in [0, t]: datasketch's false-positive measure."""
    return _integrate(lambda j: candidate_probability(j, bands, rows), 0.0, t)


def false_negative_area(t: float, bands: int, rows: int) -> float:
    """Integral of 1 - P(J) over J in [t, 1]."""
    return _integrate(lambda j: 1.0 - candidate_probability(j, bands, rows), t, 1.0)


def half_point(bands: int, rows: int) -> float:
    """The Jaccard at which P(J) = 0.5 exactly."""
    return (1.0 - 0.5 ** (1.0 / bands)) ** (1.0 / rows)


def s_curve_table(bands: int, rows: int, points=(0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)) -> str:
    lines = ["| Jaccard | P(candidate) |", "|---|---|"]
    lines += [f"| {j:.2f} | {candidate_probability(j, bands, rows):.4f} |" for j in points]
    return "\n".join(lines)


if __name__ == "__main__":  # prints the table cited in docs/dedup.md
    b, r = 18, 7
    print(f"bands={b} rows={r}: 50% at J={half_point(b, r):.3f}, (1/b)^(1/r)={threshold(b, r):.3f}")
    print(f"FP area [0,0.8]={false_positive_area(0.8, b, r):.4f}  FN area [0.8,1]={false_negative_area(0.8, b, r):.5f}")
    print(s_curve_table(b, r))
    assert not math.isnan(half_point(b, r))
