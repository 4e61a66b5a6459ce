"""Synthetic corpora of any size made from ../shared/corpus, for scale tests and benches.

Each generated record belongs to one area of the source listing and is recombined from two to
four source papers of that area: its abstract is a shuffle of their sentences, its keyphrase
line joins runs of their keyphrase lines, its title joins a source title with a serial word (so
every title, and hence every record id, is unique), its authors come from a pool of people made
from the corpus's given names and surnames (the pool grows with n, a few people are prolific),
and its date is spread over 2010-2026. The same seed and size always give the same file.

Generation streams: memory holds only the source corpus, so a million records cost no more
memory than ten. Written as the landscape listing (`.txt`, the default), JSON Lines in the
record schema (`.jsonl`) or arXiv's bulk metadata snapshot (`.snapshot.json`: its keys and
layout, as in tests/fixtures/arxiv-snapshot.json: wrapped title and abstract, authors as a string
and as [last, first, suffix] with TeX accents, RFC 2822 version dates, categories for the area
from AREA_CATEGORIES; it has no keyphrase line).

    python bench/corpus_gen.py 10000 /tmp/scale/c10k.txt [--seed 7] [--source PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import zlib
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
AREA_CATEGORIES = {  # the source listing's areas as arXiv categories, primary first
    "Astrophysics": ["astro-ph.CO", "astro-ph.GA", "astro-ph.IM", "astro-ph.HE"],
    "Experimental Physics": ["hep-ex", "physics.ins-det", "nucl-ex"],
    "Foundational AI": ["cs.LG", "stat.ML", "cs.AI"],
    "Theoretical Physics": ["hep-th", "hep-ph", "hep-lat", "quant-ph"],
}
CATEGORY_AREAS = {category: area for area, categories in AREA_CATEGORIES.items() for category in categories}
_ACCENTED = {"a": "\\'a", "e": "\\'e", "o": '\\"o', "u": '\\"u', "c": "\\c{c}"}
_DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


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


def area_categories_toml() -> str:
    """A config's [area_categories] table giving each generated record its area back from its
    categories (what `landscape ingest --config` reads)."""
    return "[area_categories]\n" + "".join(f'"{category}" = "{area}"\n' for category, area in CATEGORY_AREAS.items())


def wrapped(text: str, width: int = 80, continuation: str = "") -> str:
    """Text broken at spaces into lines of at most width characters, as arXiv stores it; lines
    after the first start with continuation."""
    lines, line = [], ""
    for word in text.split():
        if line.strip() and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = continuation
        line += (" " if line.strip() else "") + word
    return "\n".join(lines + [line])


def tex_name(name: str) -> str:
    """The name as arXiv writes it: one person in seven has the first accentable letter of their
    name accented, in TeX."""
    if zlib.crc32(name.encode()) % 7:
        return name
    for k, ch in enumerate(name):
        if ch in _ACCENTED:
            return name[:k] + _ACCENTED[ch] + name[k + 1 :]
    return name


def arxiv_id(i: int, archive: str) -> str:
    """A unique arXiv id for record i: one in fifty old style (archive/YYMMNNN from 1991-08, 999
    a month), the rest new style (YYMM.NNNNN from 2015-01, 20,000 a month)."""
    if i % 50 == 49:
        k = i // 50
        month = 1991 * 12 + 7 + k // 999
        return f"{archive}/{month // 12 % 100:02d}{month % 12 + 1:02d}{k % 999 + 1:03d}"
    month = 2015 * 12 + i // 20_000
    return f"{month // 12 % 100:02d}{month % 12 + 1:02d}.{i % 20_000 + 1:05d}"


def snapshot_entry(record: dict, i: int) -> str:
    """One line of arXiv's metadata snapshot for generated record i (the record's date is its
    first version's; one in two has a second a week later)."""
    day = date.fromisoformat(record["date"])
    rng = random.Random(i)
    primary = AREA_CATEGORIES.get(record["area"], ["physics.gen-ph"])
    categories = [primary[i % len(primary)]] + [c for c in primary if c != primary[i % len(primary)]][: i % 3]
    ident = arxiv_id(i, categories[0].split(".")[0])
    names = [tex_name(a) for a in record["authors"]]
    parsed = [[a.split()[-1], " ".join(a.split()[:-1]), ""] for a in names]
    versions = [{"version": f"v{v + 1}", "created": _rfc2822(day + timedelta(days=7 * v), rng)} for v in range(1 + i % 2)]
    entry = {
        "id": ident, "submitter": record["authors"][0] if record["authors"] else None,
        "authors": ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1] if names else "",
        "title": wrapped(record["title"], 72, "  "), "comments": f"{8 + i % 30} pages, {1 + i % 9} figures",
        "journal-ref": f"Phys.Rev.D {90 + i % 20}, {i % 100_000:06d} ({day.year + 1})" if i % 3 == 0 else None,
        "doi": f"10.1103/PhysRevD.{90 + i % 20}.{i % 100_000:06d}" if i % 3 == 0 else None,
        "report-no": None, "categories": " ".join(categories),
        "license": "http://arxiv.org/licenses/nonexclusive-distrib/1.0/",
        "abstract": "  " + wrapped(record["abstract"]) + "\n",
        "versions": versions, "update_date": (day + timedelta(days=30)).isoformat(), "authors_parsed": parsed,
    }
    return json.dumps(entry, separators=(",", ":"))


def _rfc2822(day: date, rng: random.Random) -> str:
    return (f"{_DAY_NAMES[day.weekday()]}, {day.day} {_MONTHS[day.month - 1]} {day.year}"
            f" {rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d} GMT")


def write_corpus(path: Path, n: int, seed: int = 7, source: Source | None = None, start: int = 0) -> Path:
    """Write generated records start..n-1 to path: JSON Lines when it ends in .jsonl, arXiv's
    snapshot when in .snapshot.json, else a listing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = "snapshot" if path.name.endswith(".snapshot.json") else "jsonl" if path.suffix == ".jsonl" else "listing"
    with path.open("w", encoding="utf-8") as out:
        for i, record in enumerate(generate(n, seed, source, start), start):
            if kind == "snapshot":
                out.write(snapshot_entry(record, i) + "\n")
            elif kind == "jsonl":
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                out.write(listing_entry(record) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int, help="how many records")
    parser.add_argument("out", type=Path, help="file to write (.jsonl: JSON Lines, .snapshot.json: arXiv snapshot, else a listing)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=int, default=0, help="first record number (to write only newcomers)")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="a landscape listing to recombine")
    args = parser.parse_args(argv)
    write_corpus(args.out, args.n, args.seed, read_source(args.source), args.start)
    print(f"{args.out}: {args.n - args.start} records", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
