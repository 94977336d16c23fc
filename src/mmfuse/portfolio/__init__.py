"""The portfolio: members that learn from the input pipeline's flat views (linear models on n-grams and on frozen
embeddings, LightGBM) and the fused network, one interface (``member.Member``), fitted under one time budget
(``fit.PortfolioFit``, ``budget.TimeBudget``), weighted by greedy ensemble selection on validation and calibrated by
temperature scaling (``ensemble.Portfolio``), predicting by one of the paths in ``prediction``. Each member is one
file registered in ``registry.MEMBERS``."""

from . import linear, neighbours, network, trees  # noqa: F401  (registers the members)
from .budget import TimeBudget
from .ensemble import Portfolio
from .fit import PortfolioFit
from .flat import FlatInputs, concat, flat_batch, named_views
from .member import FitData, Member
from .network import NetworkMember, NetworkPlan
from .prediction import EagerPath, GraphPath, member_outputs, prediction_path
from .store import MemberStore

__all__ = ["EagerPath", "FitData", "FlatInputs", "GraphPath", "Member", "MemberStore", "NetworkMember", "NetworkPlan",
           "Portfolio", "PortfolioFit", "TimeBudget", "concat", "flat_batch", "member_outputs", "named_views",
           "prediction_path"]
