"""Synthetic corpora of any size made from ../shared/corpus, for scale tests and benches.

Each generated record belongs to one area of the source listing and is recombined from two to
four source papers of that area: its abstract is a shuffle of their sentences, its keyphrase
line joins runs of their keyphrase lines, its title joins a source title with a serial word (so
every title, and hence every record id, is unique), its authors come from a pool of people made
from the corpus's given names and surnames (the pool grows with n, a few people are prolific),
and its date is spread over 2010-2026. The same seed and size always give the same file.

Generation streams: memory holds only the source corpus, so a million records cost no more
memory than ten. Written as the landscape listing (`.txt`, the default) or JSON Lines in the
record schema (`.jsonl`).

    python bench/corpus_gen.py 10000 /tmp/scale/c10k.txt [--seed 7] [--source PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "corpus" / "landscape_dev.txt"

_HEADER = re.compile(
    r"^(?P<area>[A-Z][A-Za-z&,'()\- ]{1,60}?)\s+"
    r"(?P<date>(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.? \d{1,2}, \d{4})\s*$"
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z$\\(])")
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]  # 70 syllables
FIRST_DAY = date(2010, 1, 1)
DAYS = (date(2026, 3, 1) - FIRST_DAY).days


@dataclass
class Paper:
    area: str
    title: str
    authors: list[str]
    sentences: list[str]
    keyphrases: list[str]


@dataclass
class Source:
    """The source corpus as the generator needs it: papers by area, and name pools."""

    areas: list[str]
    weights: list[int]
    papers: dict[str, list[Paper]]
    given: list[str]
    surnames: list[str]


def read_source(path: Path = DEFAULT_SOURCE) -> Source:
    """Entries of a landscape listing (header, title, authors, abstract, keyphrase line)."""
    entries: list[list[str]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            continue
        if _HEADER.match(line):
            entries.append([line])
        elif entries:
            entries[-1].append(line)
    papers: dict[str, list[Paper]] = {}
    given, surnames = set(), set()
    for entry in entries:
        if len(entry) != 5:
            continue
        header, title, author_line, abstract, keyphrases = entry
        match = _HEADER.match(header)
        assert match is not None
        authors = [a.strip() for a in re.split(r",\s*|\s+and\s+", re.sub(r",?\s*\bet al\.?$", "", author_line))
                   if a.strip()]
        for name in authors:
            parts = name.split()
            if len(parts) >= 2 and parts[0][0].isupper() and len(parts[0]) > 2 and parts[0].isalpha():
                given.add(parts[0])
                surnames.add(parts[-1])
        sentences = [s.strip() for s in _SENTENCE.split(abstract) if len(s.strip()) > 20]
        if sentences:
            papers.setdefault(match["area"].strip(), []).append(
                Paper(match["area"].strip(), title, authors, sentences, keyphrases.lower().split())
            )
    if not papers:
        raise SystemExit(f"{path}: no listing entries found")
    areas = sorted(papers)
    return Source(areas, [len(papers[a]) for a in areas], papers, sorted(given), sorted(surnames))


def serial_word(i: int) -> str:
    """A pronounceable word unique to i (bijective base-70 syllables, at least two)."""
    out = []
    i += 70
    while i:
        i, r = divmod(i, 70)
        out.append(_SYLLABLES[r])
    return "".join(reversed(out)).capitalize()


def person(j: int, source: Source) -> str:
    """The j-th person of the pool: every (given, surname) pair, spread over surnames first."""
    g, s = divmod(j, len(source.surnames))
    return f"{source.given[(g * 7 + s) % len(source.given)]} {source.surnames[s]}"


def generate(n: int, seed: int = 7, source: Source | None = None, start: int = 0) -> Iterator[dict]:
    """Records start..n-1 as dicts (area, date, title, authors, abstract, keyphrase_line): the
    same i always gives the same record, so a corpus of n + 1,000 is a corpus of n plus 1,000."""
    source = source or read_source()
    for i in range(start, n):
        pool = max(200, i // 2)
        rng = random.Random(seed * 1_000_003 + i)
        area = rng.choices(source.areas, weights=source.weights)[0]
        papers = rng.sample(source.papers[area], min(len(source.papers[area]), rng.randint(2, 4)))
        sentences = [s for p in papers for s in p.sentences]
        abstract = " ".join(rng.sample(sentences, min(len(sentences), rng.randint(4, 8))))
        words: list[str] = []
        for p in papers:
            if p.keyphrases:
                start = rng.randrange(len(p.keyphrases))
                words += p.keyphrases[start : start + rng.randint(3, 8)]
        prolific = rng.random() < 0.3
        people = sorted({int(pool * rng.random() ** (3 if prolific else 1)) for _ in range(rng.randint(1, 6))})
        day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
        yield {
            "area": area,
            "date": day.isoformat(),
            "title": f"{papers[0].title.rstrip('.')}: {serial_word(i)}",
            "authors": [person(j, source) for j in people],
            "abstract": abstract,
            "keyphrase_line": " ".join(words),
        }


def listing_entry(record: dict) -> str:
    d = date.fromisoformat(record["date"])
    return (f"{record['area']} {_MONTHS[d.month - 1]} {d.day}, {d.year}\n\n{record['title']}\n\n"
            f"{', '.join(record['authors'])}\n\n{record['abstract']}\n\n{record['keyphrase_line']}\n")


def write_corpus(path: Path, n: int, seed: int = 7, source: Source | None = None, start: int = 0) -> Path:
    """Write generated records start..n-1 to path: JSON Lines when it ends in .jsonl, else a listing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    jsonl = path.suffix == ".jsonl"
    with path.open("w", encoding="utf-8") as out:
        for record in generate(n, seed, source, start):
            out.write(json.dumps(record, ensure_ascii=False) + "\n" if jsonl else listing_entry(record) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int, help="how many records")
    parser.add_argument("out", type=Path, help="file to write (.jsonl for JSON Lines, else a listing)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=int, default=0, help="first record number (to write only newcomers)")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="a landscape listing to recombine")
    args = parser.parse_args(argv)
    write_corpus(args.out, args.n, args.seed, read_source(args.source), args.start)
    print(f"{args.out}: {args.n - args.start} records", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
