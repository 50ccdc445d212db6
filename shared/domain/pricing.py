"""Prices of model tokens: the one formula that turns tokens into dollars, and where a backend's price comes from.

A backend's price is, in this order: `PRICE_TABLE["backend:model"]`, `PRICE_TABLE["backend"]` (configured), then
for every backend but `local` the built-in price of its model (`prices.json` beside this module: USD per million
tokens with each entry's source and date; names and aliases match case-insensitively). A local model costs 0
unless PRICE_TABLE prices it; any other model that no entry names has no price (its turns cost 0) and says so.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

BUILTIN_PRICES_PATH = Path(__file__).with_name("prices.json")
FREE_BY_DEFAULT = "local"  # the backend whose model costs nothing unless PRICE_TABLE says otherwise

Origin = Literal["configured", "built-in", "local", "unknown"]


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """The cost of a call, rounded to 8 decimals (a millionth of a cent)."""
        total = input_tokens * self.input_per_million + output_tokens * self.output_per_million
        return round(total / 1_000_000, 8)

    @property
    def free(self) -> bool:
        return self.input_per_million == 0 and self.output_per_million == 0


@dataclass(frozen=True)
class ListedPrice:
    """One entry of the built-in price table."""

    model: str
    aliases: tuple[str, ...]
    provider: str
    price: Price
    cached_input_per_million: float | None
    source: str
    as_of: str
    note: str


@dataclass(frozen=True)
class Quote:
    """The price a backend's model is charged at, and where that price comes from."""

    backend: str
    model: str
    price: Price | None
    origin: Origin
    key: str | None = None  # the PRICE_TABLE key, or the built-in entry's model name
    as_of: str | None = None  # the built-in entry's date

    @property
    def paid(self) -> bool:
        """Counts against a budget: anything but a free price; a model with no known price is not assumed free."""
        if self.origin == "local":
            return False
        return self.price is None or not self.price.free

    @property
    def basis(self) -> str:
        """Where the price comes from, in words."""
        if self.origin == "configured":
            return f"PRICE_TABLE[{self.key!r}]"
        if self.origin == "built-in":
            return f"built-in price of {self.key} (Azure Global Standard, as of {self.as_of})"
        if self.origin == "local":
            return "the local backend costs 0 unless PRICE_TABLE prices it"
        return (
            f"PRICE_TABLE has no price for {self.backend}:{self.model} or {self.backend}, and {self.model!r} is not "
            "a model of the built-in price table"
        )

    def to_dict(self) -> dict[str, Any]:
        """What analytics show of the price each backend is charged at."""
        return {
            "model": self.model,
            "input": None if self.price is None else self.price.input_per_million,
            "output": None if self.price is None else self.price.output_per_million,
            "source": self.origin,
            "as_of": self.as_of,
            "basis": self.basis,
        }


class Prices(Protocol):
    """Anything that knows the price of a backend's model (the settings do)."""

    def price(self, backend: str, model: str) -> Price | None: ...


def quote(table: Mapping[str, Price], backend: str, model: str) -> Quote:
    """A backend's price: configured (`backend:model`, then `backend`), else built-in by model name (not for the
    local backend), else none."""
    for key in (f"{backend}:{model}", backend):
        if key in table:
            return Quote(backend, model, table[key], "configured", key)
    if backend == FREE_BY_DEFAULT:
        return Quote(backend, model, None, "local")
    listed = builtin_prices().get(model.strip().lower())
    if listed is None:
        return Quote(backend, model, None, "unknown")
    return Quote(backend, model, listed.price, "built-in", listed.model, listed.as_of)


def cost_of(prices: Prices, backend: str, model: str, input_tokens: int, output_tokens: int) -> float:
    """What one call cost; 0 when there is no price for it."""
    price = prices.price(backend, model)
    return 0.0 if price is None else price.cost(input_tokens, output_tokens)


@functools.cache
def builtin_prices() -> Mapping[str, ListedPrice]:
    """The built-in table by lower-cased model name and alias (read once; a malformed entry fails loudly)."""
    document = json.loads(BUILTIN_PRICES_PATH.read_text(encoding="utf-8"))
    if document.get("unit") != "per_million_tokens" or document.get("currency") != "USD":
        raise ValueError(f"{BUILTIN_PRICES_PATH.name}: expected USD per million tokens")
    by_name: dict[str, ListedPrice] = {}
    for entry in document["models"]:
        listed = _listed(entry)
        for name in {name.lower() for name in (listed.model, *listed.aliases)}:
            if name in by_name:
                raise ValueError(f"{BUILTIN_PRICES_PATH.name}: {name!r} names two entries")
            by_name[name] = listed
    return by_name


def _listed(entry: Mapping[str, Any]) -> ListedPrice:
    model = str(entry["model"])
    if not entry.get("source") or not entry.get("as_of"):
        raise ValueError(f"{BUILTIN_PRICES_PATH.name}: {model} has no source or date")
    price = Price(float(entry["input"]), float(entry["output"]))
    if price.input_per_million < 0 or price.output_per_million < 0:
        raise ValueError(f"{BUILTIN_PRICES_PATH.name}: {model} has a negative price")
    cached = entry.get("cached_input")
    return ListedPrice(
        model=model,
        aliases=tuple(str(alias) for alias in entry.get("aliases", ())),
        provider=str(entry.get("provider", "")),
        price=price,
        cached_input_per_million=None if cached is None else float(cached),
        source=str(entry["source"]),
        as_of=str(entry["as_of"]),
        note=str(entry.get("note", "")),
    )
