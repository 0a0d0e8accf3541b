"""The built-in universe: real US tickers with name, sector and market-cap bucket.

Starting prices and volatilities are round, plausible figures for the simulation, not
quotes; `beta` ties a stock to its sector factor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MarketCap = Literal["large", "mid", "small"]


@dataclass(frozen=True)
class Security:
    """One tradable symbol of the simulated market."""

    symbol: str
    name: str
    sector: str
    market_cap: MarketCap
    start_price: float
    volatility: float  # annualised
    beta: float  # loading on the sector factor, 0..1


UNIVERSE: tuple[Security, ...] = (
    Security("AAPL", "Apple Inc.", "technology", "large", 190.0, 0.25, 0.7),
    Security("MSFT", "Microsoft Corporation", "technology", "large", 410.0, 0.24, 0.7),
    Security("NVDA", "NVIDIA Corporation", "technology", "large", 120.0, 0.50, 0.7),
    Security("GOOGL", "Alphabet Inc.", "communication", "large", 170.0, 0.28, 0.6),
    Security("META", "Meta Platforms, Inc.", "communication", "large", 500.0, 0.35, 0.6),
    Security("AMZN", "Amazon.com, Inc.", "consumer_discretionary", "large", 185.0, 0.30, 0.6),
    Security("TSLA", "Tesla, Inc.", "consumer_discretionary", "large", 240.0, 0.55, 0.5),
    Security("JPM", "JPMorgan Chase & Co.", "financials", "large", 200.0, 0.22, 0.7),
    Security("GS", "The Goldman Sachs Group, Inc.", "financials", "large", 460.0, 0.26, 0.7),
    Security("V", "Visa Inc.", "financials", "large", 275.0, 0.20, 0.6),
    Security("JNJ", "Johnson & Johnson", "healthcare", "large", 155.0, 0.16, 0.6),
    Security("PFE", "Pfizer Inc.", "healthcare", "large", 29.0, 0.24, 0.6),
    Security("MRNA", "Moderna, Inc.", "healthcare", "mid", 105.0, 0.60, 0.5),
    Security(
        "VRTX", "Vertex Pharmaceuticals Incorporated", "healthcare", "large", 450.0, 0.25, 0.5
    ),
    Security("XOM", "Exxon Mobil Corporation", "energy", "large", 115.0, 0.25, 0.8),
    Security("CVX", "Chevron Corporation", "energy", "large", 155.0, 0.24, 0.8),
    Security("DVN", "Devon Energy Corporation", "energy", "mid", 47.0, 0.38, 0.8),
    Security("WMT", "Walmart Inc.", "consumer_staples", "large", 68.0, 0.17, 0.6),
    Security("KO", "The Coca-Cola Company", "consumer_staples", "large", 62.0, 0.15, 0.6),
    Security("CAT", "Caterpillar Inc.", "industrials", "large", 340.0, 0.28, 0.7),
    Security("BA", "The Boeing Company", "industrials", "large", 180.0, 0.35, 0.6),
    Security("NEE", "NextEra Energy, Inc.", "utilities", "large", 72.0, 0.22, 0.7),
    Security("PLTR", "Palantir Technologies Inc.", "technology", "mid", 24.0, 0.60, 0.5),
    Security("ROKU", "Roku, Inc.", "communication", "mid", 62.0, 0.55, 0.5),
    Security("ETSY", "Etsy, Inc.", "consumer_discretionary", "mid", 60.0, 0.50, 0.5),
    Security("CROX", "Crocs, Inc.", "consumer_discretionary", "mid", 140.0, 0.45, 0.5),
    Security("SOFI", "SoFi Technologies, Inc.", "financials", "mid", 7.5, 0.55, 0.5),
    Security("EXAS", "Exact Sciences Corporation", "healthcare", "mid", 58.0, 0.45, 0.4),
    Security("AXON", "Axon Enterprise, Inc.", "industrials", "mid", 300.0, 0.35, 0.5),
    Security("FSLR", "First Solar, Inc.", "utilities", "mid", 190.0, 0.50, 0.5),
    Security("UPST", "Upstart Holdings, Inc.", "financials", "small", 28.0, 0.80, 0.4),
    Security("SAVA", "Cassava Sciences, Inc.", "healthcare", "small", 22.0, 0.90, 0.3),
    Security("BLNK", "Blink Charging Co.", "industrials", "small", 3.0, 0.85, 0.4),
    Security("RIOT", "Riot Platforms, Inc.", "technology", "small", 10.0, 0.85, 0.4),
    Security("BYND", "Beyond Meat, Inc.", "consumer_staples", "small", 6.5, 0.85, 0.3),
    Security("CLNE", "Clean Energy Fuels Corp.", "energy", "small", 2.8, 0.60, 0.6),
)

SECTORS: tuple[str, ...] = tuple(sorted({s.sector for s in UNIVERSE}))
_BY_SYMBOL = {s.symbol: s for s in UNIVERSE}


def security(symbol: str) -> Security | None:
    """The security for `symbol` (case-insensitive), or None if it is not in the universe."""
    return _BY_SYMBOL.get(symbol.upper())
