"""Offline evaluation: retrieval metrics over BEIR-shaped qrels and runs, and loaders for benchmark sets.

`metrics` reproduces trec_eval (as wrapped by pytrec_eval) for nDCG@k, Recall@k and MRR; `beir` reads the
BEIR folder layout (e.g. SciFact); `csfcube` reads CSFCube's faceted query-by-example pools and scores them
with the metric its authors' evaluation script uses.
"""
