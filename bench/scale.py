"""Scale: generate, ingest and build corpora of growing size, then add 1,000 records; per step
seconds and peak RSS, and the exponent of time against n fitted over the sizes.

    python bench/scale.py                      # 10k, 100k, 1M (the 1M run takes hours: background it)
    python bench/scale.py --sizes 10000,30000  # what a short run affords
    python bench/scale.py --table /tmp/scale/scale.json   # print the table of an earlier run

Each size gets a fresh store under --out. Corpora come from ../shared/corpus through
bench/corpus_gen.py (record i is the same in every corpus, so the +1,000 are records n..n+999):
a listing, and for the last --snapshot-share of the records (10% by default) arXiv's metadata
snapshot, ingested together with their areas from their categories.
Ingest runs as a child process (`landscape ingest`; peak RSS from wait4); the build runs in a
child that calls each step in turn (as `landscape build` does) while a thread samples its RSS
every 20 ms, so each step has its own peak. The embedder is `fast` when this install has it,
else `tfidf` (--embedder chooses). Results are written to --out/scale.json after every phase, so
a long run that is stopped keeps what it measured.

Each step's CPU seconds (the child's process time) are kept beside its wall-clock seconds, with
their own exponent: on a machine shared with other work the wall-clock exponent measures the
load as much as the code (a 10,000-record build at load 0.2 against a 100,000-record one at load
5-14 gave connections 1.47 by the clock; its CPU time grows as n^1.06, see docs/build-scale.md).

Goals (issue 14): every step's exponent at most 1.15; full build at 100k under 10 minutes and at
1,000,000 under 2 hours, peak RSS under 8 GB; +1,000 into 1,000,000 under 3 minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

GOAL_EXPONENT = 1.15
GOAL_BUILD_S = {100_000: 600, 1_000_000: 7200}
GOAL_RSS_MB = 8 * 1024
GOAL_ADD_S = {1_000_000: 180}
PROJECT_TO = 1_000_000  # "1M proj": a step's CPU s at the largest size times (1M / n)^(its CPU exponent)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cpu_with_children() -> float:
    """CPU seconds of this process and of its children that have ended (the local engine's
    processes end with the step that forked them)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def children_private_mb() -> float:
    """Memory this process's children hold alone (private pages, from smaps_rollup): the local
    engine's forked workers share the parent's pages until they write to them, so their RSS
    would count the shared corpus twice."""
    total = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                pids = f.read().split()
        except OSError:
            continue
        for pid in pids:
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    total += sum(int(line.split()[1]) for line in f if line.startswith(("Private_Clean", "Private_Dirty")))
            except (OSError, ValueError, IndexError):
                continue
    return total / 1024


class PeakRss:
    """Samples this process's RSS (plus its children's private memory, every fifth sample) on a
    thread; `take()` returns the peak since the last take."""

    def __init__(self, every: float = 0.02):
        self.peak = rss_mb()
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        tick = 0
        children = 0.0
        while not self._stop.wait(self.every):
            tick += 1
            if tick % 5 == 0:
                children = children_private_mb()
            self.peak = max(self.peak, rss_mb() + children)

    def take(self) -> float:
        peak, self.peak = max(self.peak, rss_mb()), rss_mb()
        return peak

    def stop(self) -> None:
        self._stop.set()


def child_build(db: str, embedder: str, out: str, only: str = "") -> None:
    """In the child: run every build step (or those of `only`, comma-separated) in order, timing
    each and sampling its peak RSS."""
    from landscape.config import Config
    from landscape.enrich.pipeline import BuildContext, StepResult, record_last_build, run_steps
    from landscape.store import Store, now_iso

    config = Config.load(None, db_path=db)
    config.embedder = embedder
    sampler = PeakRss()
    steps = []
    with Store(db) as store:
        ctx = BuildContext(store=store, config=config)
        started = now_iso()
        results = []
        sampler.take()
        running = run_steps(ctx, only.split(",") if only else None)  # as `landscape build` runs them
        while True:
            start, cpu = time.perf_counter(), cpu_with_children()
            done = next(running, None)
            if done is None:
                break
            name, counts = done
            seconds = time.perf_counter() - start
            steps.append({"step": name, "seconds": round(seconds, 2), "cpu_s": round(cpu_with_children() - cpu, 2),
                          "rss_mb": round(sampler.take()), "counts": counts})
            print(f"  {name}: {seconds:.1f} s ({steps[-1]['cpu_s']:.1f} s CPU), {steps[-1]['rss_mb']} MB, {counts}",
                  flush=True)
            results.append(StepResult(name, seconds, counts))
            Path(out).write_text(json.dumps(steps))  # after every step: a run stopped keeps what it measured
        record_last_build(store, started, results, ctx.fallbacks)
    sampler.stop()
    Path(out).write_text(json.dumps(steps))


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, float, int, float]:
    """Run a child process; (seconds, peak RSS in MB from wait4, exit status, CPU seconds)."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, proc.returncode, usage.ru_utime + usage.ru_stime


def choose_embedder(wanted: str | None) -> str:
    """`wanted`, else `fast` where its teacher (MiniLM) is installed, else `tfidf`, said aloud.

    (It once asked get_embedder for `fast` without a store, which always fails, so every run
    silently measured tfidf.)"""
    if wanted:
        return wanted
    try:
        from landscape.enrich.embed import minilm_path

        if os.path.isdir(minilm_path()):
            return "fast"
        reason = f"no MiniLM at {minilm_path()}"
    except Exception as exc:  # noqa: BLE001 - any failure means this install cannot fit fast
        reason = str(exc)
    print(f"embedder: tfidf (the fast embedder needs MiniLM as its teacher: {reason})", file=sys.stderr)
    return "tfidf"


def corpus_files(n: int, out: Path, seed: int, source: object, snapshot_share: float) -> list[Path]:
    """The corpus of n records: a listing of the first, and arXiv's snapshot layout for the last
    snapshot_share of them (areas from their categories by the config that `config_file` writes)."""
    from corpus_gen import write_corpus

    listed = n - round(n * snapshot_share)
    files = [(out / (f"corpus_{n}.txt" if listed == n else f"corpus_{n}_listing.txt"), 0, listed)]
    if listed < n:
        files.append((out / f"corpus_{n}.snapshot.json", listed, n))
    for path, first, end in files:
        if not path.exists():
            write_corpus(path, end, seed, source, start=first)  # type: ignore[arg-type]
    return [path for path, _, _ in files]


def config_file(out: Path) -> Path:
    """A config whose [area_categories] maps the generator's arXiv categories to its areas."""
    from corpus_gen import area_categories_toml

    path = out / "scale.toml"
    path.write_text(area_categories_toml())
    return path


def measure(n: int, added: int, embedder: str, out: Path, seed: int, only: str = "", snapshot_share: float = 0.0) -> dict:
    from corpus_gen import read_source, write_corpus

    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    py = sys.executable
    source = read_source()
    more = out / f"more_{n}.txt"
    start = time.perf_counter()
    corpus = corpus_files(n, out, seed, source, snapshot_share)
    write_corpus(more, n + added, seed, source, start=n)
    print(f"[{n}] corpus ready in {time.perf_counter() - start:.1f} s", flush=True)
    db = out / f"scale_{n}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    for path in out.glob(f"scale_{n}.db.*"):
        path.unlink()
    result: dict = {"n": n, "embedder": embedder, "added": added, "load": round(os.getloadavg()[0], 1)}
    cli = [py, "-c", "from landscape.cli import main; main()"]
    config = ["--config", str(config_file(out))]
    for phase, files in (("build", corpus), ("add", [more])):
        seconds, rss, rc, cpu = run_child([*cli, "ingest", *map(str, files), "--db", str(db), *config], env)
        if rc:
            raise SystemExit(f"[{n}] ingest exited {rc}")
        steps = [{"step": "ingest", "seconds": round(seconds, 2), "cpu_s": round(cpu, 2), "rss_mb": round(rss)}]
        print(f"[{n}] {phase}: ingest {seconds:.1f} s, {rss:.0f} MB", flush=True)
        report = out / f"steps_{n}_{phase}.json"
        report.unlink(missing_ok=True)
        seconds, rss, rc, _ = run_child([py, __file__, "--child-build", str(db), embedder, str(report), only], env)
        steps += json.loads(report.read_text()) if report.exists() else []
        result[phase] = {"steps": steps, "build_s": round(seconds, 2), "build_rss_mb": round(rss)}
        if rc:  # the steps it finished are kept, with how it ended
            result[phase]["exit"] = rc
            print(f"[{n}] {phase}: build exited {rc} after {len(steps) - 1} steps (peak {rss:.0f} MB)", flush=True)
            return result
        print(f"[{n}] {phase}: build {seconds:.1f} s, peak {rss:.0f} MB", flush=True)
    return result


def exponent(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of log(seconds) against log(n)."""
    points = [(n, s) for n, s in points if s > 0]
    if len(points) < 2:
        return None
    xs, ys = [math.log(n) for n, _ in points], [math.log(s) for _, s in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else None


def table(results: list[dict]) -> str:
    results = sorted(results, key=lambda r: r["n"])
    sizes = [r["n"] for r in results]
    lines = [f"embedder: {results[0]['embedder']}; +{results[0]['added']} records after each full build;"
             f" load average at the start of each size: {', '.join(str(r.get('load')) for r in results)}"]
    project = max(sizes) < PROJECT_TO  # no measured 1,000,000: each step's CPU time extrapolated
    head = (f"{'phase/step':<22}" + "".join(f"{f'{n:,} s':>12}{'cpu s':>9}{'MB':>7}" for n in sizes)
            + f"{'exp':>7}{'cpu exp':>8}" + (f"{'1M proj':>9}" if project else "") + "  goal")
    lines += [head, "-" * len(head)]
    for phase in ("build", "add"):
        names = [s["step"] for s in results[0].get(phase, {}).get("steps", [])]
        rows = names + ["total"]
        projected_total = 0.0
        for name in rows:
            cells, points, cpu_points = "", [], []
            for r in results:
                steps = {s["step"]: s for s in r.get(phase, {}).get("steps", [])}
                if name == "total":
                    seconds = sum(s["seconds"] for s in steps.values())
                    cpu = sum(s.get("cpu_s", float("nan")) for s in steps.values())
                    mb = max((s["rss_mb"] for s in steps.values()), default=0)
                else:
                    seconds, mb = steps.get(name, {}).get("seconds", float("nan")), steps.get(name, {}).get("rss_mb", 0)
                    cpu = steps.get(name, {}).get("cpu_s", float("nan"))
                points.append((r["n"], seconds))
                cpu_points.append((r["n"], cpu))
                cells += f"{seconds:>12.1f}{cpu:>9.1f}{mb:>7}"
            exp = exponent([(n, s) for n, s in points if not math.isnan(s)])
            cpu_exp = exponent([(n, s) for n, s in cpu_points if not math.isnan(s)])
            goal = goal_text(phase, name, exp, results)
            proj = ""
            if project:
                last = cpu_points[-1][1]
                if name == "total":
                    proj = f"{projected_total:>9.0f}"
                elif cpu_exp is not None and not math.isnan(last):
                    value = last * (PROJECT_TO / cpu_points[-1][0]) ** cpu_exp
                    projected_total += value
                    proj = f"{value:>9.0f}"
                else:
                    proj = f"{'':>9}"
            lines.append(f"{phase + ' ' + name:<22}{cells}{'' if exp is None else f'{exp:.2f}':>7}"
                         f"{'' if cpu_exp is None else f'{cpu_exp:.2f}':>8}{proj}  {goal}")
    return "\n".join(lines)


def goal_text(phase: str, name: str, exp: float | None, results: list[dict]) -> str:
    if name != "total":
        if phase == "add" or exp is None:
            return "" if phase == "add" else f"exp <= {GOAL_EXPONENT}"
        return f"exp <= {GOAL_EXPONENT}: {'met' if exp <= GOAL_EXPONENT else 'MISSED'}"
    notes = []
    goals = GOAL_BUILD_S if phase == "build" else GOAL_ADD_S
    for r in results:
        total = sum(s["seconds"] for s in r.get(phase, {}).get("steps", []))
        peak = max((s["rss_mb"] for s in r.get(phase, {}).get("steps", [])), default=0)
        if r.get(phase, {}).get("exit"):
            notes.append(f"{r['n']:,}: STOPPED (exit {r[phase]['exit']}) after these steps")
        elif r["n"] in goals:
            notes.append(f"{r['n']:,}: {total:.0f} s vs < {goals[r['n']]} s")
        notes.append(f"{r['n']:,}: peak {peak} MB vs < {GOAL_RSS_MB} MB")
    return "; ".join(notes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated record counts")
    parser.add_argument("--added", type=int, default=1000, help="records added after each full build")
    parser.add_argument("--embedder", default=None, help="fast (default when installed) or tfidf, or any spec")
    parser.add_argument("--out", type=Path, default=Path("/tmp/scale"), help="folder for corpora, stores, results")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--snapshot-share", type=float, default=0.1,
                        help="share of each corpus written as arXiv's metadata snapshot (the rest as a listing)")
    parser.add_argument("--table", type=Path, help="print the table of an earlier run's scale.json and stop")
    parser.add_argument("--steps", default="", help="only these build steps, comma-separated (default: all)")
    parser.add_argument("--child-build", nargs=4, metavar=("DB", "EMBEDDER", "OUT", "STEPS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_build:
        child_build(*args.child_build)
        return 0
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    embedder = choose_embedder(args.embedder)
    saved = args.out / "scale.json"
    results: list[dict] = []
    for n in [int(s) for s in args.sizes.split(",") if s.strip()]:
        print(f"[{n}] load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
        results.append(measure(n, args.added, embedder, args.out, args.seed, args.steps, args.snapshot_share))
        saved.write_text(json.dumps(results, indent=1))
        print(table(results), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
