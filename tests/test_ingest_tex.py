"""TeX outside math becomes Unicode text in titles, abstracts and author names, in every
format; math stays exactly as written."""

from __future__ import annotations

import csv
import json

import pytest
from pylatexenc.latex2text import LatexNodes2Text

from landscape.text import tex_to_text

from .conftest import cli_json, run_cli

TITLE = r"R\'{e}nyi entropy and \emph{Schr\"odinger} bridges -- a ``test''"
ABSTRACT = r"We bound $S_\alpha(\rho) \le \log d$ for G\"odel's \textit{toy} model, with \(x^2\) and 50\% kept."
AUTHOR = r"Bal\'azs Erd\H{o}s"
WANT_TITLE = "Rényi entropy and Schrödinger bridges – a “test”"
WANT_ABSTRACT = r"We bound $S_\alpha(\rho) \le \log d$ for Gödel's toy model, with \(x^2\) and 50% kept."
WANT_AUTHOR = "Balázs Erdős"


def _csv(path):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "title", "abstract", "authors", "kind"])
        writer.writerow(["r1", TITLE, ABSTRACT, AUTHOR, "paper"])


FILES = {
    "listing": lambda p: p.write_text(
        f"Astrophysics Mar 2, 2026\n\n{TITLE}\n\n{AUTHOR}, Ada Lovelace\n\n{ABSTRACT}\n\nsome phrases\n"
    ),
    "abstracts": lambda p: p.write_text(f"Abstract: {ABSTRACT}\n"),
    "aggregator": lambda p: p.write_text(f"{TITLE}\narXiv.org Machine Learning\n{ABSTRACT}\n"),
    "talk": lambda p: p.write_text(
        f"{TITLE}\n\n\n\n{AUTHOR} November 29, 2024\n\n\n\n{ABSTRACT}\n\n\n\nResults\n\nMore text.\n"
    ),
    "jsonl": lambda p: p.write_text(json.dumps({"title": TITLE, "abstract": ABSTRACT, "authors": [AUTHOR]}) + "\n"),
    "csv": _csv,
    "bibtex": lambda p: p.write_text(
        f"@article{{k,\n  title = {{{TITLE}}},\n  author = {{{AUTHOR}}},\n  abstract = {{{ABSTRACT}}},\n}}\n"
    ),
    "arxiv-atom": lambda p: p.write_text(
        '<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n<entry>\n'
        f"<id>http://arxiv.org/abs/2401.00001v1</id><title>{TITLE}</title>\n"
        f"<summary>{ABSTRACT}</summary><author><name>{AUTHOR}</name></author>\n</entry>\n</feed>\n"
    ),
    "arxiv-snapshot": lambda p: p.write_text(json.dumps({
        "id": "2401.00001", "title": TITLE, "abstract": ABSTRACT, "categories": "hep-th",
        "versions": [{"version": "v1", "created": "Mon, 1 Jan 2024 10:00:00 GMT"}],
        "authors_parsed": [[r"Erd\H{o}s", r"Bal\'azs", ""]],
    }) + "\n"),
}


@pytest.mark.parametrize("fmt", sorted(FILES))
def test_tex_becomes_unicode_text_and_math_stays_in_every_format(fmt, db, tmp_path):
    path = tmp_path / f"input.{fmt}"
    FILES[fmt](path)
    run_cli("ingest", "--format", fmt, path, db=db)
    (rec,) = cli_json("list", db=db)
    assert rec["abstract"] == WANT_ABSTRACT
    if fmt != "abstracts":  # an abstracts page has neither titles nor authors
        assert rec["title"] == WANT_TITLE
    if fmt not in ("abstracts", "aggregator"):
        assert rec["authors"][0] == WANT_AUTHOR


PROSE = [
    r"R\'{e}nyi", r"Bal\'azs", r"Schr\"odinger", r"Erd\H{o}s", r"\v{C}ech", r"Fran\c{c}ois", r"\AA{}ngstr\"om",
    r"G\"{o}ttingen and Li\`ege", r"\emph{emphasised} and \textbf{bold} text", r"{\it italic} words",
    r"1--2 GeV --- a ``quoted'' aside", r"a \& b, 5\% and \#1", r"Stra\ss{}e and \o{}re", r"na\"{\i}ve",
]


@pytest.mark.parametrize("text", PROSE)
def test_prose_pieces_agree_with_pylatexenc(text):
    """Parity: piece by piece gives what pylatexenc gives on the whole string."""
    assert tex_to_text(text) == LatexNodes2Text(math_mode="verbatim").latex_to_text(text)


@pytest.mark.parametrize(
    "math",
    [r"$\alpha\'{e}$", r"$$\frac{a}{b} -- c$$", r"\(\emph{x}\)", r"\[ x'' \]", r"\begin{equation}a--b\end{equation}"],
)
def test_math_is_kept_exactly(math):
    assert tex_to_text(f"R\\'enyi {math} R\\'enyi") == f"Rényi {math} Rényi"


def test_plain_text_and_unknown_commands_are_not_lost():
    assert tex_to_text("100% of ~3 GeV, cost $10") == "100% of ~3 GeV, cost $10"  # % and ~ as written
    assert tex_to_text(r"\LaTeX{} and \mbox{a box} and \url{https://x.org/a_b}") == "LaTeX and a box and https://x.org/a_b"
    assert tex_to_text(r"escaped \$5 and \$6") == "escaped $5 and $6"
    assert tex_to_text(r"{B}ayesian~model \{set\}", bibtex=True) == "Bayesian model {set}"
    assert tex_to_text("code at https://github.com/x/Inverse-Problem--Methods -- see") == (
        "code at https://github.com/x/Inverse-Problem--Methods – see"  # a -- in an address stays
    )
    assert tex_to_text(r"as in Ref.~\cite{a:2021} and \href{http://x.org}{the \'etude}") == "as in Ref. [cit.] and the étude"
