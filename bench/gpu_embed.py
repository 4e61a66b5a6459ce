"""Embedding on a GPU: Landscape's path against a bare sentence-transformers encode.

    python bench/gpu_embed.py --texts 100000 --out /tmp/gpu     # needs CUDA; says so and stops without

One table, every row from the same run on the same texts (titles and abstracts of records made by
bench/corpus_gen.py, MiniLM, input cut at 256 tokens):
  - Landscape: `SentenceTransformerEmbedder.to_gpu().encode`, what an embedding actor with a GPU
    (and the local engine on a machine with CUDA) runs: fp16, batches of similar token length,
    texts tokenised in spawned CPU processes a chunk ahead of the GPU;
  - bare encode: `SentenceTransformer(path, device="cuda").encode(texts)` as a user would call it,
    at its default batch of 32 and at 256 (the faster of the two is the baseline);
  - forward alone: Landscape's device loop on batches tokenised and padded beforehand (the
    ceiling without the tokeniser);
  - tokenise alone: the tokeniser processes' own rate (the ceiling without the GPU);
and the agreement of Landscape's vectors with the bare encode's (cosine, min and mean).
Goal (scale-out issue): Landscape at least 5x the bare encode. scale_out.py prints it as its
fifth table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

GOAL_GPU = 5.0


def bench_texts(n: int) -> list[str]:
    """Title and abstract of `n` generated records, as the embed step joins them."""
    from corpus_gen import write_corpus

    from landscape.ingest import parse_file
    from landscape.models import Record

    with tempfile.TemporaryDirectory() as tmp:
        _, parsed = parse_file(write_corpus(Path(tmp) / "gpu.txt", n))
        return [f"{r.title}. {r.abstract}" for r in parsed if isinstance(r, Record)]


def gpu_rows(n: int, model_path: str | None = None) -> dict[str, Any] | None:
    """Texts/s of each way to embed `n` texts on the GPU (see the module docstring); None without CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from landscape.enrich.bert import _pool_batches
    from landscape.enrich.embed import MINILM, SentenceTransformerEmbedder, minilm_path

    path = model_path or minilm_path()
    texts = bench_texts(n)
    vectors: dict[str, Any] = {}

    def rate(name: str, run: Any) -> float:
        torch.cuda.synchronize()
        began = time.perf_counter()
        vectors[name] = run()
        torch.cuda.synchronize()
        return len(texts) / (time.perf_counter() - began)

    ours = SentenceTransformerEmbedder(path, MINILM).to_gpu()
    ours.encode(texts[:2048])  # load, start the tokeniser processes, warm the kernels
    bare = SentenceTransformer(path, device="cuda")
    bare.max_seq_length = 256
    bare.encode(texts[:2048])
    out: dict[str, Any] = {"texts": len(texts), "device": torch.cuda.get_device_name(0),
                           "torch": torch.__version__, "mean words": float(np.mean([len(t.split()) for t in texts]))}
    out["landscape texts/s"] = rate("ours", lambda: ours.encode(texts))
    out["bare encode (batch 32) texts/s"] = rate("bare", lambda: bare.encode(texts, normalize_embeddings=True))
    out["bare encode (batch 256) texts/s"] = rate("bare256", lambda: bare.encode(texts, batch_size=256,
                                                                                  normalize_embeddings=True))
    bert = ours.bert
    chunk = 1024
    jobs = [(texts[s : s + chunk], 512, 65_536) for s in range(0, len(texts), chunk)]
    pool = bert.token_pool()
    began = time.perf_counter()
    prepared = list(zip(range(0, len(texts), chunk), pool.imap(_pool_batches, jobs), strict=True))
    out["tokenise only texts/s"] = len(texts) / (time.perf_counter() - began)
    out["tokeniser processes"] = pool._processes
    out["forward only texts/s"] = rate("forward", lambda: bert.encode_prepared(prepared, len(texts), "cuda", True))
    cos = np.sum(vectors["ours"] * vectors["bare"], axis=1)
    out["cosine to bare min"] = float(cos.min())
    out["cosine to bare mean"] = float(cos.mean())
    out["bare encode texts/s"] = max(out["bare encode (batch 32) texts/s"], out["bare encode (batch 256) texts/s"])
    out["ratio to bare"] = out["landscape texts/s"] / out["bare encode texts/s"]
    out["peak GPU memory MB"] = torch.cuda.max_memory_allocated() / 2**20
    bert.close_token_pool()
    return out


def show(gpu: dict[str, Any]) -> str:
    rows = [f"GPU embedding, {gpu['device']} (torch {gpu['torch']}), {gpu['texts']:,} texts"
            f" of {gpu['mean words']:.0f} words on average, MiniLM cut at 256 tokens",
            f"   {'how':<34}{'texts/s':>10}{'x bare':>9}"]
    for key in ("landscape", "bare encode (batch 32)", "bare encode (batch 256)", "forward only", "tokenise only"):
        value = gpu[f"{key} texts/s"]
        rows.append(f"   {key:<34}{value:>10,.0f}{value / gpu['bare encode texts/s']:>9.2f}")
    rows.append(f"   cosine of Landscape's vectors to the bare encode's: min {gpu['cosine to bare min']:.5f},"
                f" mean {gpu['cosine to bare mean']:.6f}")
    rows.append(f"   goal: Landscape at least {GOAL_GPU:.0f}x the faster bare encode:"
                f" {gpu['ratio to bare']:.1f}x, {'met' if gpu['ratio to bare'] >= GOAL_GPU else 'MISSED'}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--model", help="MiniLM's directory (default: the bundled package's)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    gpu = gpu_rows(args.texts, args.model)
    if gpu is None:
        print("no CUDA device here: nothing measured")
        return
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_embed.json").write_text(json.dumps(gpu, indent=1))
    print(show(gpu))


if __name__ == "__main__":
    main()
