"""People: author name variants merged conservatively, and the co-authorship graph.

The store already treats names equal up to case, accents, dots and hyphens as one author.
On top of that, names with the same surname are merged when their given names agree:
  strong   a full given name matches and the rest are initials or omitted
           ("Isaac Chuang" / "Isaac L. Chuang", "V. Ashley Villar" / "Ashley Villar")
  nickname one given name is a prefix of the other ("Alex" / "Alexander"): merged only when
           the two share a co-author
  initials only initials agree ("A. K. Saydjari" / "Andrew K. Saydjari"): merged only when
           exactly one other person of that surname fits
and never when any two names of the merged group contradict each other. Collaborations are
never merged. Author lists that end in "et al." are truncated: co-author counts from them are
lower bounds, and every profile says how many of its papers are affected.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from ..models import LandscapeError
from ..store.interfaces import LandscapeReadStore
from ..text import normalise_author, strip_accents

_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})
_GROUP_WORDS = ("collaboration", "consortium", "team", "group", "project", "survey")


def split_name(name: str) -> tuple[list[str], str]:
    """Given-name tokens (initials as single letters) and the surname, lowercase, no accents."""
    text = strip_accents(name).lower().replace(".", ". ")
    parts = [p.strip(".,") for p in text.split() if p.strip(".,")]
    while len(parts) > 1 and parts[-1] in _SUFFIXES:
        parts.pop()
    if not parts:
        return [], ""
    given: list[str] = []
    for p in parts[:-1]:
        given += [s for s in p.split("-") if s] if all(len(s) == 1 for s in p.split("-")) else [p]
    return given, parts[-1]


def is_group(name: str) -> bool:
    lower = name.lower()
    return any(w in lower for w in _GROUP_WORDS)


def token_match(a: str, b: str) -> str | None:
    if a == b:
        return "initial" if len(a) == 1 else "exact"
    if (len(a) == 1 or len(b) == 1) and a[0] == b[0]:
        return "initial"
    if min(len(a), len(b)) >= 3 and (a.startswith(b) or b.startswith(a)):
        return "nickname"
    return None


def given_match(g1: list[str], g2: list[str]) -> str | None:
    """How two given-name lists agree: strong, nickname, initials, or None (contradict).

    The shorter list must align, in order, with tokens of the longer one; tokens of the longer
    list left over are middle names or initials the other form omits.
    """
    if not g1 or not g2:
        return None
    short, long_ = (g1, g2) if len(g1) <= len(g2) else (g2, g1)
    best: str | None = None
    rank = {"strong": 3, "initials": 2, "nickname": 1}

    def walk(i: int, j: int, kinds: list[str]) -> None:
        nonlocal best
        if i == len(short):
            kind = "nickname" if "nickname" in kinds else "strong" if "exact" in kinds else "initials"
            if best is None or rank[kind] > rank[best]:
                best = kind
            return
        for jj in range(j, len(long_) - (len(short) - i) + 1):
            m = token_match(short[i], long_[jj])
            if m:
                walk(i + 1, jj + 1, kinds + [m])

    walk(0, 0, [])
    if best and not _first_names_agree(g1, g2):
        return None
    return best


def _first_names_agree(g1: list[str], g2: list[str]) -> bool:
    """A full first name on both sides must match: 'Kyle Metzger' is not 'Brian D. Metzger'."""
    a, b = g1[0], g2[0]
    if len(a) > 1 and len(b) > 1:
        return token_match(a, b) is not None or a in g2 or b in g1
    return True


@dataclass
class Person:
    key: str
    name: str
    variants: list[str]
    author_ids: set[int]
    records: set[str] = field(default_factory=set)


class _Groups:
    """Union-find over author ids that also keeps each group's members (so asking for them
    costs the group's size, not the number of authors)."""

    def __init__(self, names: dict[int, str]):
        self.names = names
        self.parent = {i: i for i in names}
        self._members: dict[int, list[int]] = {i: [i] for i in names}

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def members(self, i: int) -> list[int]:
        return sorted(self._members[self.find(i)])

    def fits(self, a: int, b: int, nickname: bool = True) -> bool:
        """Every name of a's group agrees with every name of b's (nicknames only if allowed)."""
        allowed = {"strong", "initials", "nickname"} if nickname else {"strong", "initials"}
        return all(
            given_match(split_name(self.names[x])[0], split_name(self.names[y])[0]) in allowed
            for x in self.members(a) for y in self.members(b)
        )

    def only_fit(self, a: int, ids: list[int]) -> int | None:
        """The one other group among ids that a's group fits without nicknames, if exactly one."""
        roots = {self.find(b) for b in ids} - {self.find(a)}
        fitting = [r for r in sorted(roots) if self.fits(a, r, nickname=False)]
        return fitting[0] if len(fitting) == 1 else None

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            keep, gone = min(ra, rb), max(ra, rb)
            self.parent[gone] = keep
            self._members[keep] += self._members.pop(gone)


def merge_variants(names: dict[int, str], coauthors: dict[int, set[int]]) -> dict[int, int]:
    """author id -> id of the person it belongs to (the smallest id of its merged group)."""
    by_surname: dict[str, list[int]] = defaultdict(list)
    for aid, name in names.items():
        given, surname = split_name(name)
        if given and surname and not is_group(name):
            by_surname[surname].append(aid)
    groups = _Groups(names)
    for ids in by_surname.values():
        if len(ids) < 2:
            continue
        ids.sort()
        near = _sharing_an_initial(ids, names)
        pairs = [(a, b, given_match(split_name(names[a])[0], split_name(names[b])[0]))
                 for a in ids for b in sorted(near[a]) if b > a]
        for a, b, kind in pairs:
            if kind == "strong" and groups.fits(a, b):
                groups.union(a, b)
        for a, b, kind in pairs:
            if kind == "nickname" and groups.find(a) != groups.find(b) and groups.fits(a, b):
                mine = set().union(*(coauthors.get(x, set()) for x in groups.members(a)))
                theirs = set().union(*(coauthors.get(x, set()) for x in groups.members(b)))
                if mine & theirs:
                    groups.union(a, b)
        changed = True
        while changed:
            changed = False
            for a in ids:
                other = groups.only_fit(a, sorted(near[a]))
                if other is not None and groups.only_fit(other, sorted(near[other])) == groups.find(a):
                    groups.union(a, other)
                    changed = True
    return {aid: groups.find(aid) for aid in names}


def _sharing_an_initial(ids: list[int], names: dict[int, str]) -> dict[int, set[int]]:
    """For each author of one surname, the others whose given names share an initial with
    theirs (with itself): names that share none can never agree (every given-name match keeps the
    first letter), so only these pairs are compared, not every pair of the surname."""
    by_initial: dict[str, list[int]] = defaultdict(list)
    initials = {a: {g[0] for g in split_name(names[a])[0]} for a in ids}
    for a in ids:
        for letter in initials[a]:
            by_initial[letter].append(a)
    return {a: {b for letter in initials[a] for b in by_initial[letter]} for a in ids}


def people(store: LandscapeReadStore) -> tuple[dict[int, Person], dict[str, list[int]]]:
    """Every person (merged variants) and, per record, its people in author order."""
    rows = store.ls_authorship_rows()
    names = {aid: name for _, _, aid, name, _ in rows}
    keys = {aid: key for _, _, aid, _, key in rows}
    by_record: dict[str, list[int]] = defaultdict(list)
    for rid, _, aid, _, _ in rows:
        by_record[rid].append(aid)
    coauthors: dict[int, set[int]] = defaultdict(set)
    for aids in by_record.values():
        for a in aids:
            coauthors[a].update(x for x in aids if x != a)
    person_of = merge_variants(names, coauthors)
    uses = Counter(aid for aids in by_record.values() for aid in aids)
    out: dict[int, Person] = {}
    for aid, pid in sorted(person_of.items()):
        p = out.setdefault(pid, Person(key="", name="", variants=[], author_ids=set()))
        p.author_ids.add(aid)
    for p in out.values():
        forms = sorted(p.author_ids, key=lambda a: (-_full_given(names[a]), -len(names[a]), -uses[a], names[a]))
        p.name = names[forms[0]]
        p.key = keys[forms[0]]
        p.variants = sorted(names[a] for a in p.author_ids if a != forms[0])
    record_people: dict[str, list[int]] = {}
    for rid, aids in by_record.items():
        seen: list[int] = []
        for aid in aids:
            if person_of[aid] not in seen:
                seen.append(person_of[aid])
                out[person_of[aid]].records.add(rid)
        record_people[rid] = seen
    return out, record_people


def _full_given(name: str) -> int:
    """How many given names are spelled out: the display form is the fullest one."""
    return sum(1 for g in split_name(name)[0] if len(g) > 1)


def find_person(persons: dict[int, Person], query: str) -> Person:
    """The one person a name names: exact (any variant), else the only one whose name contains it."""
    key = normalise_author(query)
    if not key:
        raise LandscapeError("author: expected a name, found nothing")
    q_given, q_surname = split_name(query)
    exact = [p for p in persons.values() if key in {normalise_author(v) for v in [p.name, *p.variants]}]
    if len(exact) == 1:
        return exact[0]
    fitting = [
        p for p in persons.values()
        if any(split_name(v)[1] == q_surname and (not q_given or given_match(q_given, split_name(v)[0]))
               for v in [p.name, *p.variants])
    ]
    if not fitting:
        words = key.split()
        fitting = [p for p in persons.values() if all(w in normalise_author(p.name).split() for w in words)]
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        raise LandscapeError(f"no author matching {query!r}")
    shown = ", ".join(sorted(p.name for p in fitting)[:8])
    raise LandscapeError(f"author {query!r} is ambiguous: {shown}")


def author_profile(store: LandscapeReadStore, query: str, top: int = 20) -> dict[str, Any]:
    """What `landscape author NAME` shows."""
    from .citations import author_citations

    persons, record_people = people(store)
    person = find_person(persons, query)
    rows = {r["id"]: r for r in store.ls_rows()}
    truncated = store.ls_truncated_record_ids()
    records = sorted(person.records, key=lambda r: (rows[r]["date"] or "", r), reverse=True)
    concepts = store.ls_record_concept_names(records)
    concept_counts = Counter(c for r in records for c in concepts.get(r, []))
    co = Counter(pid for r in records for pid in record_people.get(r, []) if persons[pid] is not person)
    years = sorted(rows[r]["date"][:4] for r in records if rows[r]["date"])
    n_trunc = sum(1 for r in records if r in truncated)
    return {
        "name": person.name,
        "key": person.key,
        "variants": person.variants,
        "papers_count": len(records),
        "first_year": int(years[0]) if years else None,
        "latest_year": int(years[-1]) if years else None,
        "areas": dict(Counter(rows[r]["area"] for r in records if rows[r]["area"]).most_common()),
        "top_concepts": [{"name": c, "count": n} for c, n in concept_counts.most_common(top)],
        "coauthors": [
            {"name": persons[pid].name, "key": persons[pid].key, "papers": n}
            for pid, n in sorted(co.items(), key=lambda kv: (-kv[1], persons[kv[0]].name))
        ],
        "truncated_papers": n_trunc,
        "coauthors_complete": n_trunc == 0,
        "coauthors_note": (
            f"{n_trunc} of {len(records)} records list only their first authors (\"et al.\"):"
            " their other co-authors are unknown, so co-author counts are lower bounds"
            if n_trunc else "every author list is complete"
        ),
        "citations": author_citations(store.cited_counts(records), {r: rows[r]["title"] for r in records}),
        "papers": [
            {"id": r, "title": rows[r]["title"], "date": rows[r]["date"], "kind": rows[r]["kind"],
             "area": rows[r]["area"], "authors_truncated": r in truncated}
            for r in records
        ],
    }


def coauthor_graph(store: LandscapeReadStore, min_papers: int = 1) -> dict[str, Any]:
    """People as nodes and co-authorship as weighted edges; truncated lists are counted apart."""
    persons, record_people = people(store)
    truncated = store.ls_truncated_record_ids()
    edges: Counter[tuple[int, int]] = Counter()
    for pids in record_people.values():
        for i, a in enumerate(pids):
            for b in pids[i + 1:]:
                edges[(min(a, b), max(a, b))] += 1
    nodes = [
        {"key": p.key, "name": p.name, "papers": len(p.records),
         "truncated_papers": len(p.records & truncated)}
        for p in persons.values() if len(p.records) >= min_papers
    ]
    return {
        "nodes": sorted(nodes, key=lambda n: (-n["papers"], n["key"])),
        "edges": [
            {"source": persons[a].key, "target": persons[b].key, "papers": n}
            for (a, b), n in sorted(edges.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "records_with_truncated_authors": len(truncated),
    }

