"""How good is the landscape? Figures computed from the store alone, no human labels.

- topic_area_nmi: normalised mutual information between topics and the *given* areas of
  papers (how far topics respect the field's own division; 1.0 would mean topics are areas).
- topic_coherence_npmi: mean normalised PMI of each topic's top 10 words, counted as
  co-occurrence in titles+abstracts over the whole corpus (-1 never together, 0 independent,
  1 always together); the usual automatic proxy for "a person sees what the topic is about".
- outlier_fraction: papers that fit no topic well (assigned to the nearest and flagged).
- talk_link_concept_share: of all talk-section -> paper links, the share whose paper carries
  a concept the section names (links a reader can see the reason for).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from typing import Any

from ..config import Config
from ..store.interfaces import LandscapeReadStore
from .topics import record_tokens


def npmi_coherence(topic_words: list[list[str]], documents: list[set[str]]) -> list[float]:
    """Mean pairwise NPMI of each topic's words over document co-occurrence."""
    n = len(documents)
    vocab = {w for words in topic_words for w in words}
    df: Counter[str] = Counter()
    pair_df: Counter[tuple[str, str]] = Counter()
    for doc in documents:
        present = sorted(vocab & doc)
        df.update(present)
        pair_df.update(itertools.combinations(present, 2))
    scores = []
    for words in topic_words:
        values = []
        for a, b in itertools.combinations(sorted(set(words)), 2):
            joint = pair_df.get((a, b), 0) / n
            if joint == 0:
                values.append(-1.0)
                continue
            pa, pb = df[a] / n, df[b] / n
            values.append(1.0 if joint == 1 else math.log(joint / (pa * pb)) / -math.log(joint))
        if values:
            scores.append(sum(values) / len(values))
    return scores


def topic_area_nmi(store: LandscapeReadStore) -> tuple[float | None, int]:
    from sklearn.metrics import normalized_mutual_info_score

    assigned = store.ls_topic_assignments()
    pairs = [
        (r["area"], assigned[r["id"]][0])
        for r in store.ls_rows()
        if r["kind"] == "paper" and r["area_source"] == "given" and r["id"] in assigned
    ]
    if len(pairs) < 2:
        return None, len(pairs)
    areas, topics = zip(*pairs)
    return float(normalized_mutual_info_score(areas, topics)), len(pairs)


def talk_link_concept_share(store: LandscapeReadStore) -> tuple[float | None, int]:
    """Links whose paper shares a concept with the section that is specific enough to name
    (the same rule the reasons follow: not carried by over ~13% of papers)."""
    from .mentions import ConceptMatcher, concept_idf, paper_concept_sets, readable, section_concepts

    links = store.ls_all_section_links()
    if not links:
        return None, 0
    named = section_concepts(store)
    rows = {r["id"]: r for r in store.ls_rows()}
    matcher = ConceptMatcher(store.ls_concept_vocabulary())
    papers = paper_concept_sets(store, matcher, rows, [r for r in rows if rows[r]["kind"] == "paper"])
    idf = concept_idf(papers)
    shared = sum(
        1 for talk, section, other in links
        if readable(named.get((talk, section), set()) & papers.get(other, set()), idf)
    )
    return shared / len(links), len(links)


def landscape_quality(store: LandscapeReadStore, config: Config | None = None) -> dict[str, Any]:
    """Topic-area NMI, topic coherence (NPMI), outlier fraction and talk-link concept share."""
    topics = store.ls_topic_rows()
    rows = store.ls_rows()
    papers = [r for r in rows if r["kind"] == "paper"]
    assigned = store.ls_topic_assignments()
    documents = [set(record_tokens(r)) for r in papers]
    coherence = npmi_coherence([t["extra"].get("top_terms", [])[:10] for t in topics], documents)
    nmi, labelled = topic_area_nmi(store)
    share, n_links = talk_link_concept_share(store)
    placed = [assigned[r["id"]] for r in papers if r["id"] in assigned]
    return {
        "topics": len(topics),
        "papers_in_topics": len(placed),
        "topic_area_nmi": None if nmi is None else round(nmi, 4),
        "labelled_papers": labelled,
        "topic_coherence_npmi": round(sum(coherence) / len(coherence), 4) if coherence else None,
        "outlier_fraction": round(sum(1 for _, o, _ in placed if o) / len(placed), 4) if placed else None,
        "talk_section_links": n_links,
        "talk_link_concept_share": None if share is None else round(share, 4),
    }
