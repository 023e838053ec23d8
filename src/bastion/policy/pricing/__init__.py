"""Prices and the cost of a response (issue 4, item 7).

Build one ``PriceBook`` at startup, look each deployment's ``ModelPrice`` up with
``price_for`` (resolved once and cached), and cost each response with ``cost``.
"""

from bastion.policy.pricing.book import PriceBook, PricedDeployment, PriceResolution, Unpriced
from bastion.policy.pricing.cost_map_file import ENV_VAR as COST_MAP_ENV_VAR
from bastion.policy.pricing.cost_map_file import SETTING as COST_MAP_SETTING
from bastion.policy.pricing.model_price import UNPRICED, ModelPrice, TokenRates, cost

__all__ = [
    "COST_MAP_ENV_VAR",
    "COST_MAP_SETTING",
    "UNPRICED",
    "ModelPrice",
    "PriceBook",
    "PriceResolution",
    "PricedDeployment",
    "TokenRates",
    "Unpriced",
    "cost",
]
