"""Whether a record's text concept is given by another record: the cost per record as the corpus
grows, against the baseline it replaced (copying the concept's set of giving records, which
grows with the corpus, for every concept found in every text: quadratic over a build).

    python bench/concept_rows.py      # a few seconds

2,000 concepts given Zipf-like (concept j by about n / 10(j + 1) records), 1,000 records with 40
found concepts each; both answers are checked equal.
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from landscape.enrich.concepts.build import text_concepts  # noqa: E402


def copying(found: Counter[str], vocab: SimpleNamespace, rec_id: str, generic: set[str]) -> Counter[str]:
    """The baseline: a set difference per found concept."""
    return Counter({k: c for k, c in found.items() if k not in generic and vocab.concepts[k].given - {rec_id}})


def main() -> None:
    rng = random.Random(7)
    print(f"{'records n':>10} {'baseline s':>11} {'counted s':>10}   (1,000 records)")
    for n in (10_000, 30_000, 100_000):
        ids = [f"r{i}" for i in range(n)]
        concepts = {f"c{j}": SimpleNamespace(given=set(rng.sample(ids, max(1, n // (10 * (j + 1))))))
                    for j in range(2000)}
        vocab = SimpleNamespace(concepts=concepts)
        founds = [Counter({f"c{int(rng.paretovariate(1.0)) % 2000}": 1 for _ in range(40)}) for _ in range(1000)]
        seconds = []
        for fn in (copying, text_concepts):
            start = time.perf_counter()
            answers = [fn(f, vocab, ids[i], set()) for i, f in enumerate(founds)]
            seconds.append(time.perf_counter() - start)
            if fn is copying:
                expected = answers
        assert answers == expected
        print(f"{n:>10,} {seconds[0]:>11.3f} {seconds[1]:>10.3f}")


if __name__ == "__main__":
    main()
