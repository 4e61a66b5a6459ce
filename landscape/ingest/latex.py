"""Repair LaTeX whose backslash escapes were eaten by a text extractor.

Slide transcripts lose the backslash together with the letter it formed a C escape with:
`\\theta` lost `\\t` and became `heta` (sometimes with a space or tab left behind), `\\frac`
lost `\\f` (`rac{`), `\\nabla` lost `\\n` (a line break and `abla`), `\\rho` and `\\rm` lost
`\\r` (a line break and `ho`), `\\begin` lost `\\b` (`egin{`), `\\arg` lost `\\a` (`rg`).

Only math is repaired (`$...$`, `$$...$$`), and only stems long or distinctive enough not to be
ordinary symbols: `u` could be `\\nu` or the variable u, so it is left alone.
"""

from __future__ import annotations

import re

# stem left after the eaten escape -> the command it was
STEMS: dict[str, str] = {
    "heta": "theta",
    "au": "tau",
    "imes": "times",
    "ext": "text",
    "extbf": "textbf",
    "extrm": "textrm",
    "ilde": "tilde",
    "riangle": "triangle",
    "anh": "tanh",
    "rac": "frac",
    "orall": "forall",
    "abla": "nabla",
    "ewline": "newline",
    "ho": "rho",
    "ightarrow": "rightarrow",
    "ight": "right",
    "egin": "begin",
    "oldsymbol": "boldsymbol",
    "rg": "arg",
    "lpha": "alpha",
    "pprox": "approx",
    "arphi": "varphi",
    "arepsilon": "varepsilon",
}
_STEM = re.compile(
    r"(?P<pre>[_^{(] |[\t\x0b\x0c\r\x08\x07\n ]?)"
    r"(?<![A-Za-z\\])(?P<stem>" + "|".join(sorted(map(re.escape, STEMS), key=len, reverse=True)) + r")"
    r"(?![A-Za-z])"
)
# `\rm` lost `\r`: a line break then a lone `m` before a space inside a subscript
_RM = re.compile(r"\n(m)(?= )")
_MATH = re.compile(r"\$\$.+?\$\$|\$[^$\n]*(?:\n[^$\n]+)*?\$", re.S)


def _fix(m: re.Match[str]) -> str:
    pre = m["pre"]
    lead = pre[0] if pre and pre[0] in "_^{(" else (" " if pre == " " else "")
    return f"{lead}\\{STEMS[m['stem']]}"


def repair_math(math: str) -> str:
    """Put back the backslashes of commands whose escape was eaten, within one math span."""
    math = _RM.sub(r"\\rm", math)
    return _STEM.sub(_fix, math)


def repair(text: str) -> str:
    """The text with every math span repaired; prose outside math is left as it was."""
    if "$" not in text:
        return text
    return _MATH.sub(lambda m: repair_math(m.group(0)), text)
