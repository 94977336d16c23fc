"""The portfolio: cheap learners over the input pipeline's flat views (linear models on n-grams and on frozen
embeddings, LightGBM) beside the fused network, weighted by greedy ensemble selection on validation and calibrated
by temperature scaling (``ensemble.Portfolio``). Each learner is one file registered in ``registry.LEARNERS``."""

from . import linear, trees  # noqa: F401  (registers the learners)
from .ensemble import Budget, Portfolio
from .flat import FlatInputs, concat, flat_batch, named_views
from .store import MemberStore

__all__ = ["Budget", "FlatInputs", "MemberStore", "Portfolio", "concat", "flat_batch", "named_views"]
