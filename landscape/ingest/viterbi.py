"""The keyphrase segmenter's Viterbi for many lines at once, in numpy.

`PhraseSegmenter._viterbi` splits one line with Python loops over (end, start, phrases so far);
an ingest runs it two or three times per keyphrase line, and it was most of an ingest's time
(about 0.5 ms a call). Here a batch of lines goes through the same recurrence with the line and
phrase-count axes as arrays: one numpy step per (end, start) pair for the whole batch. The
arithmetic is the same (float64 sums in the same order, ties to the earliest start, the fewest
phrases among equally good counts), so the splits are the same as the scalar one's, which
tests/test_phrases.py checks line by line.
"""

from __future__ import annotations

import numpy as np


def best_bounds(cost: np.ndarray, lengths: np.ndarray, k_cost: np.ndarray) -> list[list[int]]:
    """For each line b, 0, the end of each phrase of its best split, ..., lengths[b].

    cost[b, start, length - 1] is -log P(words start .. start + length of line b are one phrase),
    +inf where that runs past the line's end; lengths[b] is the line's word count (at least 1);
    k_cost[b, k] is -log P(k phrases | that many words), +inf for k = 0 and for counts the line
    may not be split into.
    """
    lines, width, max_words = cost.shape
    phrases = k_cost.shape[1]
    best = np.full((width + 1, lines, phrases), np.inf)
    best[0, :, 0] = 0.0
    back = np.zeros((width + 1, lines, phrases), dtype=np.int32)
    total = np.empty((lines, phrases - 1))
    better = np.empty((lines, phrases - 1), dtype=bool)
    for end in range(1, width + 1):
        out, back_end = best[end, :, 1:], back[end, :, 1:]
        for start in range(max(0, end - max_words), end):
            np.add(best[start, :, :-1], cost[:, start, end - start - 1, None], out=total)
            np.less(total, out, out=better)
            np.copyto(out, total, where=better)
            np.copyto(back_end, start, where=better)
    rows = np.arange(lines)
    k = np.argmin(best[lengths, rows, 1:] + k_cost[:, 1:], axis=1) + 1
    end = lengths.astype(np.int64)
    ends = [end]
    while end.any():
        end = np.where(end > 0, back[end, rows, k], 0)
        k = k - 1
        ends.append(end)
    table = np.stack(ends[::-1], axis=1).tolist()
    return [row[_first_start(row) :] for row in table]


def _first_start(row: list[int]) -> int:
    """Index of the last leading 0 of a row of phrase ends padded at the front with zeros."""
    i = 0
    while i + 1 < len(row) and row[i + 1] == 0:
        i += 1
    return i
