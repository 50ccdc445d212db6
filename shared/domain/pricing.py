"""Prices of model tokens, and the one formula that turns tokens into dollars."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """The cost of a call, rounded to 8 decimals (a millionth of a cent)."""
        total = input_tokens * self.input_per_million + output_tokens * self.output_per_million
        return round(total / 1_000_000, 8)


class Prices(Protocol):
    """Anything that knows the price of a backend's model (the settings do)."""

    def price(self, backend: str, model: str) -> Price | None: ...


def price_of(table: Mapping[str, Price], backend: str, model: str) -> Price | None:
    """The price for `backend:model`, else for `backend`, else None."""
    return table.get(f"{backend}:{model}") or table.get(backend)


def cost_of(prices: Prices, backend: str, model: str, input_tokens: int, output_tokens: int) -> float:
    """What one call cost; 0 when there is no price for it."""
    price = prices.price(backend, model)
    return 0.0 if price is None else price.cost(input_tokens, output_tokens)
