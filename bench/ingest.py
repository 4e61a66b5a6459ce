"""Ingest throughput and memory: the listing replicated to N records, as a listing and as JSONL.

Each ingest runs in a fresh child process (`landscape ingest` from the venv) into a fresh
store; the table gives records/s and the peak RSS of the ingest and the parsing process it
starts for big files, together.
The last row is the baseline: the store's own writes for the same records (every table, the
search index, the commit) with all rows built beforehand, so no reading, parsing or
splitting. No ingest into this store can go faster than that row.

    .venv/bin/python bench/ingest.py [--records 100000] [--listing PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LISTING = ROOT.parent / "shared" / "corpus" / "landscape_dev.txt"
LANDSCAPE = Path(sys.executable).parent / "landscape"


def replicate_listing(listing: Path, n: int, out: Path) -> int:
    """Write the listing's entries again and again, titles made unique, until n entries."""
    from landscape.ingest import listing as fmt
    from landscape.ingest.reader import iter_lines

    entries = [r for r in fmt.parse(str(listing), iter_lines(listing)) if hasattr(r, "title")]
    written = 0
    with out.open("w", encoding="utf-8") as f:
        while written < n:
            for rec in entries:
                if written >= n:
                    break
                copy = written // len(entries)
                title = rec.title if copy == 0 else f"{rec.title} (copy {copy})"
                month_day = _listing_date(rec.date)
                authors = ", ".join(rec.authors) + (" et al." if rec.authors_truncated else "")
                parts = [f"{rec.area} {month_day}", title, authors, rec.abstract]
                if rec.keyphrase_line:
                    parts.append(rec.keyphrase_line)
                f.write("\n\n".join(parts) + "\n\n")
                written += 1
    return written


def _listing_date(iso: str | None) -> str:
    from datetime import date

    d = date.fromisoformat(iso or "2024-01-01")
    return f"{d:%b} {d.day}, {d.year}"


def listing_to_jsonl(listing: Path, out: Path) -> int:
    """The replicated listing as JSONL in our record schema (no sources: the file is the source)."""
    from landscape.ingest import listing as fmt
    from landscape.ingest.reader import iter_lines

    n = 0
    with out.open("w", encoding="utf-8") as f:
        for rec in fmt.parse(str(listing), iter_lines(listing)):
            data = rec.to_dict()
            data["sources"] = []
            f.write(json.dumps(data, ensure_ascii=False) + "\n")
            n += 1
    return n


def timed_ingest(path: Path, db: Path) -> tuple[float, float, float, str]:
    """Seconds, CPU seconds, peak RSS in MB and the summary line the ingest printed.

    CPU seconds (the ingest and the parsing process it starts) do not depend on how busy the
    machine is; wall seconds do. Peak RSS is of the ingest and its parsing process together,
    sampled every 20 ms (ru_maxrss would give only the larger of the two)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(LANDSCAPE), "ingest", str(path), "--db", str(db)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    peak = [0]
    sampler = threading.Thread(target=_sample_rss, args=(proc, peak), daemon=True)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed: {err.strip()}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, cpu, peak[0] / 1024, out.strip().splitlines()[-1]


def _sample_rss(proc: subprocess.Popen, peak: list[int]) -> None:
    while proc.poll() is None:
        peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
        time.sleep(0.02)


def _tree_rss_kb(pid: int) -> int:
    """Resident KB of a process and all its descendants (Linux /proc)."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += _tree_rss_kb(int(child))
    except (OSError, ValueError):
        pass
    return total


def store_writes_only(listing: Path, db: Path, batch: int = 500) -> tuple[float, int]:
    """Seconds the store takes to write the listing's records (keyphrases already split, every
    row built in advance) and index them for search, commit included; and how many records."""
    from landscape.ingest import listing as fmt
    from landscape.ingest.phrases import PhraseSegmenter
    from landscape.ingest.reader import iter_lines
    from landscape.store import Store
    from landscape.text import normalise_title

    records = list(fmt.parse(str(listing), iter_lines(listing)))
    lined = [r for r in records if r.keyphrase_line]
    segmenter = PhraseSegmenter().fit(
        (r.keyphrase_line, f"{r.title}. {r.abstract}") for r in lined[:: max(1, len(lined) // 3000)]
    )
    for r in lined:
        r.keyphrases = segmenter.segment(r.keyphrase_line, f"{r.title}. {r.abstract}")
    with Store(db) as store:
        with store.bulk_write(), store.transaction():
            rows = [
                store.new_rows([(r, normalise_title(r.title or "")) for r in records[i : i + batch]])
                for i in range(0, len(records), batch)
            ]
            del records, lined
            start = time.perf_counter()
            for chunk in rows:
                store.write_new_rows(chunk)
            count = store.index_pending()
        return time.perf_counter() - start, count  # the commit and the checkpoint included


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--listing", type=Path, default=DEFAULT_LISTING)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="landscape-bench-") as tmp:
        work = Path(tmp)
        listing = work / "listing.txt"
        n = replicate_listing(args.listing, args.records, listing)
        jsonl = work / "records.jsonl"
        listing_to_jsonl(listing, jsonl)
        os.sync()  # the inputs just written are not flushed to disk during the first timed run
        rows = []
        for name, path in (("listing", listing), ("jsonl", jsonl)):
            seconds, cpu, peak, summary = timed_ingest(path, work / f"{name}.db")
            rows.append((name, n, seconds, n / seconds, cpu, n / cpu, peak, summary))
        floor, written = store_writes_only(listing, work / "floor.db")
    print(
        f"{'format':<8} {'records':>8} {'seconds':>8} {'records/s':>10} {'CPU s':>7}"
        f" {'records/CPU s':>14} {'peak RSS MB':>12}  summary"
    )
    for name, count, seconds, rate, cpu, cpu_rate, peak, summary in rows:
        print(
            f"{name:<8} {count:>8} {seconds:>8.1f} {rate:>10.0f} {cpu:>7.1f} {cpu_rate:>14.0f}"
            f" {peak:>12.0f}  {summary}"
        )
    print(
        f"{'writes':<8} {written:>8} {floor:>8.1f} {written / floor:>10.0f} {'':>7} {'':>14} {'':>12}"
        "  the store's writes alone, rows built in advance: the ceiling for any ingest"
    )
    for name, _, seconds, *_ in rows:
        print(f"{name} ingest takes {seconds / floor:.2f}x the time of the store's writes alone")
    # other work on the machine shows in the figures: say how busy it was
    print(f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
