"""The keyphrase-line split, measured through the real ingest path on hand-segmented lines."""

from __future__ import annotations

import hashlib
from pathlib import Path

from landscape import ingest
from landscape.evaluate_frozen import read_frozen
from landscape.ingest.phrases import PhraseSegmenter
from landscape.store import open_store

from .conftest import FIXTURES, LISTING, run_cli

LINES = FIXTURES / "keyphrase_lines.tsv"


def hand_segmented() -> list[tuple[str, list[str]]]:
    rows = []
    for line in LINES.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            raw, phrases = line.split("\t")
            rows.append((raw, phrases.split(" | ")))
    return rows


def held_out(raw: str) -> bool:
    """The third of the fixture never looked at while tuning (by a hash of the raw line)."""
    return int(hashlib.sha1(raw.encode()).hexdigest(), 16) % 3 == 0


def phrase_f1(pairs: list[tuple[list[str], list[str]]]) -> float:
    """Exact phrase F1, micro-averaged over lines (a phrase counts only with both its ends right)."""
    hit = sum(len(set(got) & set(gold)) for got, gold in pairs)
    found = sum(len(set(got)) for got, _ in pairs)
    wanted = sum(len(set(gold)) for _, gold in pairs)
    return 2 * hit / (found + wanted)


def test_fixture_is_hand_segmented_corpus_lines_outside_the_frozen_set(listing_db):
    rows = hand_segmented()
    with open_store(listing_db, readonly=True) as store:
        lines = {r.keyphrase_line: r.id for r in store.iter_records() if r.keyphrase_line}
    frozen = set(read_frozen(FIXTURES / "frozen_test_ids.txt"))
    assert len(rows) >= 60 and len({raw for raw, _ in rows}) == len(rows)
    for raw, phrases in rows:
        assert " ".join(phrases) == raw and raw in lines and lines[raw] not in frozen


def test_ingest_splits_hand_segmented_lines_with_phrase_f1_at_least_090(listing_db):
    with open_store(listing_db, readonly=True) as store:
        split = {r.keyphrase_line: r.keyphrases for r in store.iter_records() if r.keyphrase_line}
    pairs = [(split[raw], gold, held_out(raw)) for raw, gold in hand_segmented()]
    overall = phrase_f1([(got, gold) for got, gold, _ in pairs])
    unseen = phrase_f1([(got, gold) for got, gold, out in pairs if out])
    assert overall >= 0.90, f"exact phrase F1 {overall:.3f} on {len(pairs)} hand-segmented lines"
    assert unseen >= 0.90, f"exact phrase F1 {unseen:.3f} on the held-out third"


UNSEEN = [
    ("Stellar streams as probes of the Milky Way halo",
     "Globular clusters lose stars to the tides of the Galaxy and leave thin streams whose density "
     "variations trace dark matter subhalos. We model the mass loss with a differentiable simulator and "
     "infer the subhalo population.",
     "stellar streams tidal stripping dark matter simulation-based inference bayesian inference",
     ["tidal stripping"]),
    ("Seeing around corners with diffusion priors",
     "We reconstruct hidden scenes from light scattered off a visible wall, an ill-posed problem that we "
     "solve with a learned generative prior over scenes.",
     "non-line-of-sight imaging inverse problems diffusion models uncertainty quantification generative models",
     ["non-line-of-sight imaging", "inverse problems", "diffusion models"]),
    ("Neural network wavefunctions for frustrated magnets",
     "We optimise neural network wavefunctions by variational sampling to find ground states of "
     "frustrated spin models, reaching lower energies than tensor networks.",
     "neural variational monte carlo quantum states transformers tensor networks group theory",
     ["neural variational monte carlo", "quantum states", "tensor networks"]),
]


def test_unknown_multiword_terms_stay_whole(tmp_path: Path):
    """Papers whose own terms appear in no other line of the corpus, nor in their own abstract:
    each still stays one phrase ("tidal" + "stripping" was the old split)."""
    extra = "\n\n".join(
        f"Astrophysics Jan {day}, 2027\n\n{title}\n\nA. Author, B. Author\n\n{abstract}\n\n{line}"
        for day, (title, abstract, line, _) in enumerate(UNSEEN, start=1)
    )
    listing = tmp_path / "listing.txt"
    listing.write_text(LISTING.read_text(encoding="utf-8").rstrip() + "\n\n" + extra + "\n", encoding="utf-8")
    db = tmp_path / "x.db"
    run_cli("ingest", listing, db=db)
    with open_store(db, readonly=True) as store:
        split = {r.keyphrase_line: r.keyphrases for r in store.iter_records() if r.keyphrase_line}
    for _, _, line, whole in UNSEEN:
        assert set(whole) <= set(split[line]), split[line]


def _unseen_listing(path: Path) -> Path:
    path.write_text("\n\n".join(
        f"Astrophysics Jan {day}, 2027\n\n{title}\n\nA. Author, B. Author\n\n{abstract}\n\n{line}"
        for day, (title, abstract, line, _) in enumerate(UNSEEN, start=1)
    ) + "\n", encoding="utf-8")
    return path


def _count_calls(monkeypatch) -> tuple[list[int], list[str]]:
    """Record each segmenter fit and each line segmented while the CLI runs in this process."""
    fits: list[int] = []
    lines: list[str] = []
    fit, segment_many = PhraseSegmenter.fit, PhraseSegmenter.segment_many
    monkeypatch.setattr(PhraseSegmenter, "fit", lambda self, pairs: fits.append(1) or fit(self, pairs))
    monkeypatch.setattr(PhraseSegmenter, "segment_many",
                        lambda self, given, texts: lines.extend(given) or segment_many(self, given, texts))
    return fits, lines


def test_a_small_ingest_splits_only_its_new_lines_with_the_stored_segmenter(tmp_path: Path, monkeypatch):
    db = tmp_path / "x.db"
    run_cli("ingest", LISTING, db=db)
    with open_store(db, readonly=True) as store:
        before = {r.id: r.keyphrases for r in store.iter_records()}
    fits, lines = _count_calls(monkeypatch)
    run_cli("ingest", _unseen_listing(tmp_path / "more.txt"), db=db)
    assert fits == [], "3 new lines in 463 are under RESPLIT_SHARE: the stored segmenter is reused"
    assert sorted(lines) == sorted(line for _, _, line, _ in UNSEEN)
    with open_store(db, readonly=True) as store:
        after = {r.id: r.keyphrases for r in store.iter_records()}
        split = {r.keyphrase_line: r.keyphrases for r in store.iter_records() if r.keyphrase_line}
    assert {rid: after[rid] for rid in before} == before
    for _, _, line, whole in UNSEEN:
        assert set(whole) <= set(split[line]), split[line]
    run_cli("ingest", LISTING, db=db)
    assert fits == [] and len(lines) == len(UNSEEN), "an ingest that changed nothing splits nothing"


def test_new_lines_past_the_share_refit_the_segmenter_and_resplit_every_line(tmp_path: Path, monkeypatch):
    db = tmp_path / "x.db"
    run_cli("ingest", LISTING, db=db)
    monkeypatch.setattr(ingest, "RESPLIT_SHARE", 0.005)
    fits, lines = _count_calls(monkeypatch)
    run_cli("ingest", _unseen_listing(tmp_path / "more.txt"), db=db)
    with open_store(db, readonly=True) as store:
        total = store.count_keyphrase_lines()
    assert fits == [1] and len(lines) == total


def test_the_batched_split_is_the_scalar_split_of_every_line():
    """Ingest splits lines in numpy batches (ingest/viterbi.py); each split must be the one the
    line-by-line Viterbi gives: with no text, with every rare gram boosted, with the grams the
    record's own text holds, and for lines too long for any allowed phrase count."""
    from landscape.ingest.listing import parse
    from landscape.ingest.phrases import MAX_WORDS, _ngrams, _words, attested_in
    from landscape.ingest.reader import iter_lines

    records = [r for r in parse(str(LISTING), iter_lines(LISTING)) if hasattr(r, "keyphrase_line")]
    pairs = [(r.keyphrase_line, f"{r.title}. {r.abstract}") for r in records if r.keyphrase_line]
    segmenter = PhraseSegmenter().fit(pairs)
    lines: list[tuple[list[str], frozenset[str]]] = []
    for line, text in pairs:
        words = _words(line)
        rare = frozenset(_ngrams(words, 2, MAX_WORDS)) - segmenter._common()
        lines += [(words, frozenset()), (words, rare), (words, attested_in(set(rare), text))]
    lines += [(["monte", "carlo"] * n, frozenset()) for n in (1, 3, 41, 60)] + [([], frozenset())]
    batched = segmenter._viterbi_many(lines)
    assert batched == [segmenter._viterbi(list(words), own) for words, own in lines]
    assert sum(split != segmenter._viterbi(list(words), frozenset()) for split, (words, _) in zip(batched, lines)) > 20


def test_segment_many_gives_what_the_line_by_line_plan_gives():
    """segment_many reads each record's text before it knows whether the split needs it, to
    skip a Viterbi. Its splits must be those of the original plan, written out here with the
    scalar Viterbi: the plain split when no text can change it, else the split with the rare
    grams the text holds boosted. Lines repeat with other texts, and some texts are empty."""
    from landscape.ingest.listing import parse
    from landscape.ingest.phrases import MAX_WORDS, _ngrams, _words, attested_in
    from landscape.ingest.reader import iter_lines

    records = [r for r in parse(str(LISTING), iter_lines(LISTING)) if hasattr(r, "keyphrase_line")]
    pairs = [(r.keyphrase_line, f"{r.title}. {r.abstract}") for r in records if r.keyphrase_line]
    segmenter = PhraseSegmenter().fit(pairs)

    def planned(line: str, text: str) -> list[str]:
        words = _words(line)
        rare = frozenset(_ngrams(words, 2, MAX_WORDS)) - segmenter._common()
        plain = segmenter._viterbi(words, frozenset())
        if not rare or (rare.isdisjoint(plain) and segmenter._viterbi(words, rare) == plain):
            return list(dict.fromkeys(plain))
        return list(dict.fromkeys(segmenter._viterbi(words, attested_in(set(rare), text) if text else frozenset())))

    cases = pairs + [(line, "") for line, _ in pairs[::7]] + [(pairs[i][0], pairs[i + 1][1]) for i in range(0, 200, 3)]
    expected = [planned(line, text) for line, text in cases]
    asked: list[int] = []

    def texts(indices: list[int]) -> list[str]:
        asked.extend(indices)
        return [cases[i][1] for i in indices]

    for _ in range(2):  # the second time, plans and splits come from the segmenter's caches
        asked.clear()
        assert segmenter.segment_many([line for line, _ in cases], texts) == expected
    assert 0 < len(asked) < len(cases)
