"""The sort-based unique values give what np.unique gives."""

import numpy as np
import pytest

from landscape.arrays import unique_counts, unique_values


@pytest.mark.parametrize("dtype", [np.int64, np.uint64, np.int32])
def test_unique_values_and_counts_are_numpys(dtype):
    rng = np.random.default_rng(5)
    for values in (rng.integers(0, 50, 10_000), rng.integers(0, 2**31 - 1, 5_000), np.array([7]), np.array([], int)):
        values = values.astype(dtype)
        assert np.array_equal(unique_values(values), np.unique(values))
        got, counts = unique_counts(values)
        want, want_counts = np.unique(values, return_counts=True)
        assert np.array_equal(got, want) and np.array_equal(counts, want_counts)
        assert got.dtype == want.dtype
