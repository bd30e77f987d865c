"""Benchmark decontamination: n-gram indexes of evaluation sets and their lookup.

`sets` reads evaluation-set files (clear errors naming file and line),
`ngrams` turns texts into 64-bit n-gram hashes, `index` builds, saves, loads
and queries the index (hashes and item ids only, never the items' text).
"""
