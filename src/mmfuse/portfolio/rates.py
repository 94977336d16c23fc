"""The machine rates behind every time estimate, in one table: measured on the project's 2-core reference machine
at ``REFERENCE_THREADS`` threads (``benchmarks/realdata.py``, cold cache), scaled to the fit's thread count. Estimates
only order the work and skip what cannot start in the time left (``budget.TimeBudget``): members stop themselves when
the budget runs out, and frozen features give way to fast encoders when their estimate is over the budget's share.
"""

from __future__ import annotations

REFERENCE_THREADS = 2

# frozen features: MiniLM 0.5 ms a non-empty text + 12 us a character (fortunes' 158-character quotes 2.3 ms measured,
# debian's 189-character descriptions 2.7 ms, movies' 56-character fields 1.3 ms), empty cells nothing;
# EfficientNet-Lite0 ~25 ms an image
TEXT_SECONDS, TEXT_SECONDS_PER_CHAR, IMAGE_SECONDS = 5e-4, 1.2e-5, 2.5e-2
# linear members: seconds per row x design non-zero x (outputs + 7.5) x L-BFGS iteration, sparse n-grams and dense
# columns (fortunes 18 s: 5,778 rows x 358 n-grams x 10 classes; movies' rating 30 s; embeddings 0.7 s)
LINEAR_SPARSE, LINEAR_DENSE = 1.3e-9, 1.1e-10
# LightGBM: seconds per row x feature x tree (avdigits, the slowest measured: 29 s for 2,100 rows x 10 classes)
LIGHTGBM = 1.6e-8
# k nearest neighbours: seconds per similarity product (a row against a kept training row, per embedding column)
NEIGHBOURS = 1e-9


def at_threads(seconds: float, threads: int) -> float:
    """An estimate at the reference thread count, at ``threads`` (the work splits evenly over threads)."""
    return seconds * REFERENCE_THREADS / max(threads, 1)
