"""A longer fuzz campaign over every parser, then the mean cases, each in a fresh store.

Random inputs are real samples mutated (slices deleted, duplicated, truncated, hostile
characters inserted) or random text. A crash is any exception other than ParseError. The mean
cases (a 100 MB file, 1 MB lines, NUL bytes, mixed encodings, 10,000 nested BibTeX braces,
Atom entity expansion and external entities, a bad record after many good ones) go through
`ingest_paths` and check that a failed file leaves nothing in the store.

    .venv/bin/python bench/fuzz.py [--count 100000] [--big-mb 100] [--formats bibtex,jsonl]
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FIXTURES = ROOT / "tests" / "fixtures"
SPECIAL = "@{}()\"'#=,;:\\$%&_^~<>![]/\n\t\r \x00\ufeff\u00a0\u2028é<>&;"


def samples() -> dict[str, str]:
    seeds = SHARED / "seeds"
    return {
        "listing": (SHARED / "corpus" / "landscape_dev.txt").read_text()[:8000],
        "abstracts": (seeds / "000_a36c6340249dc15d.txt").read_text()[:3000],
        "aggregator": (seeds / "001_36b3cb48603f891c.txt").read_text()[:3000],
        "talk": (seeds / "003_00411ab6291d3934.txt").read_text()[:3000],
        "jsonl": (FIXTURES / "records.jsonl").read_text(),
        "csv": "id,kind,title,title_derived,authors,authors_truncated,date,area,abstract,keyphrases,"
               "keyphrase_line,sources,sections,extra\n"
               'x1,paper,A Title,0,A B; C D,1,2024-01-02,Astrophysics,"An, abstract",a b; c,a b c,[],[],{}\n',
        "bibtex": (FIXTURES / "sample.bib").read_text(),
        "arxiv-atom": (FIXTURES / "arxiv.atom").read_text(),
        "arxiv-snapshot": (FIXTURES / "arxiv-snapshot.json").read_text()
        + (FIXTURES / "arxiv-snapshot-edge.json").read_text(),
    }


def mutate(rng: random.Random, text: str) -> str:
    if rng.random() < 0.1:
        return "".join(rng.choice(SPECIAL + "abcXYZ019 ") for _ in range(rng.randint(0, 300)))
    for _ in range(rng.randint(1, 6)):
        if not text:
            break
        i = rng.randint(0, len(text))
        j = rng.randint(i, min(len(text), i + 200))
        op = rng.random()
        if op < 0.3:
            text = text[:i] + text[j:]
        elif op < 0.55:
            text = text[:j] + text[i:j] + text[j:]
        elif op < 0.65:
            text = text[:i]
        else:
            text = text[:i] + "".join(rng.choice(SPECIAL) for _ in range(rng.randint(1, 20))) + text[i:]
    return text


def campaign(fmt: str, sample: str, count: int, seed: int) -> tuple[int, int, int, float, str]:
    """(inputs, parse errors, crashes, seconds, first crash) for one format."""
    from landscape.ingest import FORMATS
    from landscape.models import ParseError

    module = importlib.import_module(f"landscape.ingest.{FORMATS[fmt]}")
    rng = random.Random(seed)
    errors = crashes = 0
    first = ""
    start = time.perf_counter()
    for _ in range(count):
        text = mutate(rng, sample)
        try:
            module.looks_like(text)
            for item in module.parse("fuzz", enumerate(text.split("\n"), start=1)):
                errors += hasattr(item, "error")
        except ParseError:
            errors += 1
        except Exception:  # noqa: BLE001 - counting every escape is the point
            crashes += 1
            first = first or f"{traceback.format_exc(limit=3)}\ninput: {text[:200]!r}"
    return count, errors, crashes, time.perf_counter() - start, first


def mean_cases(big_mb: int) -> list[tuple[str, Callable[[Path], None]]]:
    listing = (SHARED / "corpus" / "landscape_dev.txt").read_bytes()

    def big_listing(path: Path) -> None:
        text = listing.decode()
        first = next(m.start() for m in re.finditer(r"(?m)^\S.* [A-Z][a-z]{2} \d{1,2}, \d{4}$", text))
        entries = text[first:].replace("\nAll Posts\n", "\n").encode()
        with path.open("wb") as f:
            written, copy = 0, 0
            while written < big_mb << 20:
                block = _unique_titles(listing if copy == 0 else entries, copy)
                f.write(block)
                written += len(block)
                copy += 1

    def mb_lines(path: Path) -> None:
        with path.open("w") as f:
            for i in range(5):
                f.write(json.dumps({"title": f"Long {i}", "abstract": "word " * 200_000}) + "\n")

    def nul_bytes(path: Path) -> None:
        path.write_bytes(listing[:20000] + b"\x00\x00" + listing[20000:40000])

    def mixed_encodings(path: Path) -> None:
        path.write_bytes(listing[:30000] + "\nCaf\u00e9 in Latin-1\n".encode("latin-1") + listing[30000:60000])

    def nested_braces(path: Path) -> None:
        path.write_text("@article{deep, title = {" + "{" * 10_000 + "deep" + "}" * 10_000 + "}}\n")

    def unclosed_braces(path: Path) -> None:
        path.write_text("@article{deep, title = {" + "{" * 10_000 + "deep\n")

    def billion_laughs(path: Path) -> None:
        ents = '<!ENTITY a "lol">' + "".join(
            f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9)
        )
        path.write_text(
            f'<?xml version="1.0"?>\n<!DOCTYPE feed [{ents}]>\n<feed xmlns="http://www.w3.org/2005/Atom">'
            "<entry><title>&j;</title></entry></feed>\n"
        )

    def external_entity(path: Path) -> None:
        path.write_text(
            '<?xml version="1.0"?>\n<!DOCTYPE feed [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
            '<feed xmlns="http://www.w3.org/2005/Atom"><entry><title>&x;</title></entry></feed>\n'
        )

    def bad_after_good(path: Path) -> None:
        with path.open("w") as f:
            for i in range(5000):
                f.write(json.dumps({"title": f"Good {i}", "abstract": "fine"}) + "\n")
            f.write('{"title": 42}\n')

    return [
        (f"listing, {big_mb} MB", big_listing), ("JSONL, 1 MB lines", mb_lines), ("NUL bytes", nul_bytes),
        ("mixed encodings", mixed_encodings), ("BibTeX, 10,000 nested braces", nested_braces),
        ("BibTeX, 10,000 unclosed braces", unclosed_braces), ("Atom, billion laughs", billion_laughs),
        ("Atom, external entity", external_entity), ("5,000 good JSONL records then a bad one", bad_after_good),
    ]


def _unique_titles(block: bytes, copy: int) -> bytes:
    """The listing's entries with ' (copy N)' after each title, so replicas are new records."""
    if copy == 0:
        return block
    lines = block.split(b"\n")
    from landscape.ingest.listing import HEADER

    out, title_next = [], False
    for line in lines:
        if title_next and line.strip():
            line += f" (copy {copy})".encode()
            title_next = False
        if HEADER.match(line.decode("utf-8", "replace").strip()):
            title_next = True
        out.append(line)
    return b"\n".join(out)


def run_mean_case(name: str, make: Callable[[Path], None]) -> tuple[str, str, int, bool, float, str]:
    """(case, outcome, records stored, nothing partial, seconds, message)."""
    import resource

    from landscape.ingest import ingest_paths
    from landscape.models import ParseError
    from landscape.store import Store

    with tempfile.TemporaryDirectory(prefix="landscape-fuzz-") as tmp:
        path = Path(tmp) / "input"
        make(path)
        start = time.perf_counter()
        with Store(Path(tmp) / "x.db") as store:
            try:
                report = ingest_paths(store, [path])
                outcome, message = "ingested", report.summary()
                clean = store.count_records() == report.total("new")
            except ParseError as exc:
                outcome, message = "ParseError", str(exc).replace(str(path), "FILE")
                clean = store.count_records() == 0
            except Exception as exc:  # noqa: BLE001
                outcome, message, clean = "CRASH", f"{type(exc).__name__}: {exc}"[:120], False
            stored = store.count_records()
            ok = clean and store.integrity_ok()
        seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return name, outcome, stored, ok, seconds, f"{message[:90]} (peak RSS so far {rss:.0f} MB)"


def main() -> None:
    sys.setrecursionlimit(1000)  # the default: nothing here may lean on a raised limit
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="inputs per format")
    parser.add_argument("--big-mb", type=int, default=100, help="size of the big-file case")
    parser.add_argument("--formats", default="", help="comma-separated formats (default: all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-mean", action="store_true")
    args = parser.parse_args()
    texts = samples()
    chosen = [f for f in args.formats.split(",") if f] or list(texts)
    print(f"{'format':<12} {'inputs':>8} {'parse errors':>13} {'crashes':>8} {'seconds':>8}")
    crashed = []
    for fmt in chosen:
        n, errors, crashes, seconds, first = campaign(fmt, texts[fmt], args.count, args.seed)
        print(f"{fmt:<12} {n:>8} {errors:>13} {crashes:>8} {seconds:>8.1f}", flush=True)
        if first:
            crashed.append((fmt, first))
    for fmt, first in crashed:
        print(f"\nfirst crash in {fmt}:\n{first}")
    if args.skip_mean:
        return
    print(f"\n{'mean case':<40} {'outcome':<11} {'stored':>7} {'clean':>6} {'seconds':>8}  message")
    for name, make in mean_cases(args.big_mb):
        case, outcome, stored, ok, seconds, message = run_mean_case(name, make)
        print(f"{case:<40} {outcome:<11} {stored:>7} {ok!s:>6} {seconds:>8.1f}  {message}", flush=True)


if __name__ == "__main__":
    main()
