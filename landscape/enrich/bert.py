"""A BERT sentence encoder (MiniLM and kin) without sentence-transformers or transformers.

Why: on this 2-core CPU importing sentence-transformers (and with it transformers) costs
5-40 s per process, more than embedding ten new records. The model directory is read as
sentence-transformers writes it (safetensors weights, `tokenizer.json`, mean pooling,
normalisation) and the forward pass is written twice over the same weights: with torch (the
fastest on many texts) and with numpy (no torch import at all: a query, a few new records, or a
machine without torch). Both give sentence-transformers' vectors to float32 rounding
(`tests/test_embed.py` checks). Directories this module cannot run exactly (another
architecture or pooling) go to sentence-transformers instead (`supports`).

Speed: texts are tokenized in one Rust batch call, sorted by token count and cut into batches
of similar lengths (`length_batches`), so padding is minimal; threads follow how busy the
machine is (`cpu_threads`).
"""

from __future__ import annotations

import json
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np


def _read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def supports(path: str) -> bool:
    """Whether `path` is a BERT + mean pooling (+ normalise) model this module runs exactly."""
    try:
        config = _read_json(os.path.join(path, "config.json"))
        modules = _read_json(os.path.join(path, "modules.json"))
        pooling_dir = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
        pooling = _read_json(os.path.join(path, pooling_dir, "config.json"))
    except (OSError, ValueError, StopIteration, KeyError, TypeError):
        return False
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
        pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
    )
    return (
        config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and kinds in (["Transformer", "Pooling", "Normalize"], ["Transformer", "Pooling"])
        and bool(mean_only)
        and os.path.isfile(os.path.join(path, "model.safetensors"))
        and os.path.isfile(os.path.join(path, "tokenizer.json"))
    )


def erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7, below float32 rounding of GELU)."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def gelu(x: np.ndarray, rows: int = 256) -> np.ndarray:
    """Exact (erf) GELU, as BERT uses; by blocks of rows that stay in cache (twice as fast)."""
    out = np.empty_like(x)
    for start in range(0, len(x), rows):
        block = x[start : start + rows]
        out[start : start + rows] = 0.5 * block * (1.0 + erf(block * np.float32(0.7071067811865476)))
    return out


def cpu_threads() -> int:
    """Torch threads for this call: every core on an idle machine, fewer on a busy one.

    Two OpenMP threads on two cores that other processes keep busy wait on each other at
    every barrier: measured 9.8 s against 8.0 s with one thread (48 abstracts, load 8).
    """
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return cores
    return max(1, min(cores, round(cores + 1 - load)))


_BLAS: Any = None


@contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """numpy's BLAS limited to n threads: on busy cores two BLAS threads of a small product
    wait on each other (a short query took 1.1-1.4 s with two threads at load 8, 35 ms with one)."""
    global _BLAS
    try:
        if _BLAS is None:
            from threadpoolctl import ThreadpoolController

            _BLAS = ThreadpoolController()
    except ImportError:
        yield
        return
    with _BLAS.limit(limits=n, user_api="blas"):
        yield


def length_batches(lengths: Sequence[int], max_texts: int, max_tokens: int) -> list[list[int]]:
    """Indices in batches of similar token counts: sorted by length, a batch closes before it
    would hold more than `max_texts` texts or `max_tokens` tokens once padded, or (past four
    texts) a text a quarter longer than its first.

    A fixed batch size pads badly on mixed lengths: the 69 sections of the two seed talks
    (6,536 tokens) padded to 17,664 in batches of 64, and to 7,008 by this rule.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: (lengths[i], i)):
        full = len(current) >= max_texts or (len(current) + 1) * lengths[i] > max_tokens
        if current and (full or (len(current) >= 4 and lengths[i] > 1.25 * lengths[current[0]])):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def padded(batch: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids padded to the batch's longest, and the attention mask (1 = real token)."""
    n, length = len(batch), max(len(b) for b in batch)
    ids = np.zeros((n, length), dtype=np.int64)
    mask = np.zeros((n, length), dtype=np.float32)
    for r, b in enumerate(batch):
        ids[r, : len(b)] = b
        mask[r, : len(b)] = 1.0
    return ids, mask


_POOL_TOKENIZER: Any = None
_POOL_LOWERCASE = False


def _pool_tokenizer(path: str, max_length: int, lowercase: bool) -> None:
    """Load the tokenizer once in a tokenising process (`BertEncoder.token_pool`)."""
    global _POOL_TOKENIZER, _POOL_LOWERCASE
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per process: the pool is the parallelism
    from tokenizers import Tokenizer

    _POOL_TOKENIZER = Tokenizer.from_file(path)
    _POOL_TOKENIZER.no_padding()
    _POOL_TOKENIZER.enable_truncation(max_length=max_length)
    _POOL_LOWERCASE = lowercase


def _pool_token_ids(texts: list[str]) -> list[list[int]]:
    prepared = [t.strip().lower() if _POOL_LOWERCASE else t.strip() for t in texts]
    return [e.ids for e in _POOL_TOKENIZER.encode_batch(prepared)]


def _pool_batches(job: tuple[list[str], int, int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One chunk of texts as the accelerator takes it: batches of similar token counts, each
    (rows in the chunk, token ids padded as int32, token counts): numpy arrays pickle as buffers,
    and the padding is done here, not by the process that drives the device (which unpickled and
    padded lists of Python ints before)."""
    texts, batch_texts, batch_tokens = job
    ids = _pool_token_ids(texts)
    out = []
    for batch in length_batches([len(i) for i in ids], batch_texts, batch_tokens):
        lengths = np.array([len(ids[i]) for i in batch], dtype=np.int32)
        padded_ids = np.zeros((len(batch), int(lengths.max())), dtype=np.int32)
        for r, i in enumerate(batch):
            padded_ids[r, : lengths[r]] = ids[i]
        out.append((np.array(batch, dtype=np.int64), padded_ids, lengths))
    return out


def _on_device(array: np.ndarray, device: str) -> Any:
    """`array` as a tensor on `device`; to a GPU through pinned memory, without waiting for it."""
    import torch

    tensor = torch.from_numpy(array)
    if device.startswith("cuda"):
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    return centred / np.sqrt(var + eps) * weight + bias


class BertEncoder:
    """Tokenizer + BERT encoder + mean pooling + L2 normalisation, as sentence-transformers does."""

    def __init__(self, path: str, max_seq_length: int = 256, batch_size: int = 32, backend: str = "numpy"):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = _read_json(os.path.join(path, "config.json"))
        st_config_path = os.path.join(path, "sentence_bert_config.json")
        st_config = _read_json(st_config_path) if os.path.isfile(st_config_path) else {}
        self.lowercase = bool(st_config.get("do_lower_case", False))
        self.max_seq_length = min(int(st_config.get("max_seq_length") or max_seq_length), max_seq_length,
                                  int(config["max_position_embeddings"]))
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.layers = int(config["num_hidden_layers"])
        self.batch_size = batch_size
        self.batch_tokens = 8192
        self.path = path
        self.tokenizer = Tokenizer.from_file(os.path.join(path, "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        w = load_file(os.path.join(path, "model.safetensors"))
        prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""
        self.w = {k[len(prefix):]: v for k, v in w.items() if k.startswith(prefix)}
        # pre-transpose every dense layer once so the forward pass is x @ W + b
        for name in list(self.w):
            if name.endswith(".weight") and self.w[name].ndim == 2 and name.startswith("encoder."):
                self.w[name] = np.ascontiguousarray(self.w[name].T)
        for i in range(self.layers):
            p = f"encoder.layer.{i}.attention.self."
            self.w[f"{p}qkv.weight"] = np.concatenate(
                [self.w[f"{p}{n}.weight"] for n in ("query", "key", "value")], axis=1)
            self.w[f"{p}qkv.bias"] = np.concatenate([self.w[f"{p}{n}.bias"] for n in ("query", "key", "value")])
        self.dim = int(config["hidden_size"])
        self.backend = backend
        self._torch: dict[str, Any] | None = None
        self._device_weights: dict[tuple[str, bool], dict[str, Any]] = {}
        self._token_pool: Any = None

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, cut at max_seq_length (with [CLS] and [SEP])."""
        prepared = [t.strip().lower() if self.lowercase else t.strip() for t in texts]
        return [e.ids for e in self.tokenizer.encode_batch(prepared)]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        ids = self.token_ids(texts)
        if self.backend == "torch":
            import torch

            torch.set_num_threads(cpu_threads())
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for chunk in length_batches([len(i) for i in ids], self.batch_size, self.batch_tokens):
            out[chunk] = self.forward([ids[i] for i in chunk])
        return out

    def forward(self, batch: list[list[int]]) -> np.ndarray:
        """Pooled, normalised sentence vectors of one batch of token-id lists."""
        ids, mask = padded(batch)
        if self.backend == "torch":
            return self.forward_torch(ids, mask)
        with blas_threads(cpu_threads()):
            return self.forward_numpy(ids, mask)

    def forward_numpy(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        length = ids.shape[1]
        w = self.w
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        bias = ((1.0 - mask) * np.float32(np.finfo(np.float32).min))[:, None, None, :]
        for i in range(self.layers):
            x = self.layer(x, bias, f"encoder.layer.{i}.")
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def forward_torch(self, ids: np.ndarray, mask: np.ndarray, device: str = "cpu", half: bool = False) -> np.ndarray:
        import torch

        with torch.inference_mode():
            tid = torch.from_numpy(ids).to(device)
            tmask = torch.from_numpy(mask).to(device)
            return self.forward_tensors(tid, tmask, device, half).cpu().numpy().astype(np.float32)

    def forward_tensors(self, tid: Any, tmask: Any, device: str, half: bool) -> Any:
        """`forward_torch` on tensors already on `device`, answering a float32 tensor there: on a
        GPU the caller queues several batches before it reads any back (inference mode)."""
        import torch
        import torch.nn.functional as F

        w = self.torch_weights() if device == "cpu" and not half else self.device_weights(device, half)
        n, length = tid.shape
        dim, heads = self.dim, self.heads
        x = (w["embeddings.word_embeddings.weight"][tid] + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = F.layer_norm(x, (dim,), w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        keep = tmask.bool()[:, None, None, :]
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            flat = x.reshape(n * length, dim)
            qkv = torch.addmm(w[f"{p}attention.self.qkv.bias"], flat, w[f"{p}attention.self.qkv.weight"])
            q, k, v = qkv.view(n, length, 3, heads, dim // heads).permute(2, 0, 3, 1, 4).unbind(0)
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
            context = context.transpose(1, 2).reshape(n * length, dim)
            attn = torch.addmm(w[f"{p}attention.output.dense.bias"], context, w[f"{p}attention.output.dense.weight"])
            x = F.layer_norm(attn.view(n, length, dim) + x, (dim,), w[f"{p}attention.output.LayerNorm.weight"],
                             w[f"{p}attention.output.LayerNorm.bias"], self.eps)
            flat = x.reshape(n * length, dim)
            hidden = F.gelu(torch.addmm(w[f"{p}intermediate.dense.bias"], flat, w[f"{p}intermediate.dense.weight"]))
            out = torch.addmm(w[f"{p}output.dense.bias"], hidden, w[f"{p}output.dense.weight"])
            x = F.layer_norm(out.view(n, length, dim) + x, (dim,), w[f"{p}output.LayerNorm.weight"],
                             w[f"{p}output.LayerNorm.bias"], self.eps)
        x = x.float()
        pooled = (x * tmask[:, :, None]).sum(dim=1) / tmask.sum(dim=1, keepdim=True).clamp(min=1e-9)
        return F.normalize(pooled, dim=1)

    def device_weights(self, device: str, half: bool) -> dict[str, Any]:
        """The weights on `device` (fp16 when `half`); LayerNorm and embeddings in the same dtype."""
        key = (device, half)
        if key not in self._device_weights:
            import torch

            dtype = torch.float16 if half else torch.float32
            self._device_weights[key] = {k: t.to(device=device, dtype=dtype) for k, t in self.torch_weights().items()}
        return self._device_weights[key]

    def encode_pipelined(self, texts: Sequence[str], device: str = "cuda", half: bool = True, chunk: int = 1024,
                         batch_texts: int = 512, batch_tokens: int = 65_536, workers: int | None = None) -> np.ndarray:
        """Vectors of `texts` in their order, for an accelerator: chunks of texts are tokenised,
        batched by similar token counts and padded in CPU processes (`_pool_batches`) while the
        device runs the chunks before them, so it never waits on the tokenizer."""
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        starts = range(0, len(texts), chunk)
        jobs = [(list(texts[s : s + chunk]), batch_texts, batch_tokens) for s in starts]
        chunks = zip(starts, self.token_pool(workers).imap(_pool_batches, jobs), strict=True)
        return self.encode_prepared(chunks, len(texts), device, half)

    def encode_prepared(self, chunks: Iterable[tuple[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]], n: int,
                        device: str, half: bool, in_flight: int = 8) -> np.ndarray:
        """Vectors of `n` texts from their prepared chunks ((first row, `_pool_batches`'s batches)).
        Up to `in_flight` batches are queued on the device before the first is read back, so the
        device computes while this process copies the next batches in (pinned memory)."""
        import torch

        threads = torch.get_num_threads()
        if device.startswith("cuda"):  # the tokenisers hold the other cores: no intra-op threads to wait for
            torch.set_num_threads(1)
        try:
            return self._encode_prepared(chunks, n, device, half, in_flight)
        finally:
            torch.set_num_threads(threads)

    def _encode_prepared(self, chunks: Iterable[tuple[int, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]], n: int,
                         device: str, half: bool, in_flight: int) -> np.ndarray:
        import torch

        out = np.empty((n, self.dim), dtype=np.float32)
        pending: deque[tuple[np.ndarray, Any]] = deque()
        with torch.inference_mode():
            for start, batches in chunks:
                for rows, ids, lengths in batches:
                    tid = _on_device(ids, device).long()
                    positions = torch.arange(ids.shape[1], device=device)
                    tmask = (positions[None, :] < _on_device(lengths, device)[:, None]).float()
                    pending.append((start + rows, self.forward_tensors(tid, tmask, device, half)))
                    while len(pending) > in_flight:
                        rows_done, vectors = pending.popleft()
                        out[rows_done] = vectors.cpu().numpy()
            for rows_done, vectors in pending:
                out[rows_done] = vectors.cpu().numpy()
        return out

    def token_pool(self, workers: int | None = None) -> Any:
        """CPU processes holding this model's tokenizer (spawned: never a fork of a CUDA process),
        all started at once (a multiprocessing Pool, where ProcessPoolExecutor starts one per
        chunk submitted, so a first large input would wait on their start). One core is left to
        the process that drives the device and one to the pool's own threads."""
        if self._token_pool is None:
            import multiprocessing

            n = workers or max(1, min(16, (os.cpu_count() or 2) - 2))
            self._token_pool = multiprocessing.get_context("spawn").Pool(
                n, _pool_tokenizer, (os.path.join(self.path, "tokenizer.json"), self.max_seq_length, self.lowercase))
        return self._token_pool

    def close_token_pool(self) -> None:
        if self._token_pool is not None:
            self._token_pool.close()
            self._token_pool.join()
            self._token_pool = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_torch": None, "_device_weights": {}, "_token_pool": None}

    def torch_weights(self) -> dict[str, Any]:
        if self._torch is None:
            import torch

            self._torch = {k: torch.from_numpy(v) for k, v in self.w.items() if v.dtype == np.float32}
        return self._torch

    def layer(self, x: np.ndarray, bias: np.ndarray, p: str) -> np.ndarray:
        w = self.w
        n, length, dim = x.shape
        head = dim // self.heads
        qkv = x.reshape(n * length, dim) @ w[f"{p}attention.self.qkv.weight"] + w[f"{p}attention.self.qkv.bias"]
        qkv = qkv.reshape(n, length, 3, self.heads, head).transpose(2, 0, 3, 1, 4)
        q = np.ascontiguousarray(qkv[0]) * np.float32(1.0 / np.sqrt(head))
        k_t = np.ascontiguousarray(qkv[1].transpose(0, 1, 3, 2))
        v = np.ascontiguousarray(qkv[2])
        scores = q @ k_t  # contiguous stacks: numpy hands each head's product to BLAS
        scores += bias
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(n * length, dim)
        attn = context @ w[f"{p}attention.output.dense.weight"] + w[f"{p}attention.output.dense.bias"]
        x = layer_norm(attn.reshape(n, length, dim) + x, w[f"{p}attention.output.LayerNorm.weight"],
                       w[f"{p}attention.output.LayerNorm.bias"], self.eps)
        hidden = gelu(x.reshape(n * length, dim) @ w[f"{p}intermediate.dense.weight"] + w[f"{p}intermediate.dense.bias"])
        out = hidden @ w[f"{p}output.dense.weight"] + w[f"{p}output.dense.bias"]
        return layer_norm(out.reshape(n, length, dim) + x, w[f"{p}output.LayerNorm.weight"],
                          w[f"{p}output.LayerNorm.bias"], self.eps)
