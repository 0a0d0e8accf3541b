"""Each strategy's documented behaviour on hand-built market views."""

from datetime import UTC, datetime, timedelta

import pytest

from agent_runtime.risk import Book
from agent_runtime.strategies import REGISTRY, MarketView, NewsView, propose_safely

NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
SECTORS = {
    "MRNA": "healthcare",
    "PFE": "healthcare",
    "XOM": "energy",
    "CVX": "energy",
    "AAPL": "technology",
}
CAPS = {"MRNA": "mid", "PFE": "large", "XOM": "large", "CVX": "large", "AAPL": "large"}
PRICES = {s: 100.0 for s in SECTORS}
CASH = Book(cash=100_000, equity=100_000)


def person(strategy, **traits):
    return {
        "strategy": strategy,
        "news_weight": 0.8,
        "holding_days": 2,
        "stop_loss": 0.05,
        "contrarian_tendency": 0.2,
        "sector_preferences": sorted(set(SECTORS.values())),
        "market_cap_bias": "mixed",
        **traits,
    }


def news(symbol, score, event=None, hours_ago=1):
    return NewsView(symbol, score, 1.0, event, NOW - timedelta(hours=hours_ago))


def view(*items, **extra):
    return MarketView(prices=PRICES, news=list(items), sectors=SECTORS, caps=CAPS, **extra)


def act(strategy, market, book=CASH, **traits):
    intents, error = propose_safely(strategy, person(strategy, **traits), market, book, NOW)
    assert error is None
    return [(i.symbol, i.side) for i in intents]


FDA_WIN = news("MRNA", 0.8, "fda")


def test_event_driven_buys_a_strong_fda_approval():
    assert act("event_driven", view(FDA_WIN)) == [("MRNA", "buy")]


def test_a_contrarian_with_high_tendency_does_not_chase_the_same_news():
    assert act("contrarian", view(FDA_WIN), contrarian_tendency=0.9) == []


def test_a_contrarian_buys_oversold_names_the_news_hates_and_a_timid_one_does_not():
    hated = view(news("XOM", -0.7, "lawsuit"), returns={"XOM": -0.08})
    assert act("contrarian", hated, contrarian_tendency=0.9) == [("XOM", "buy")]
    assert act("contrarian", hated, contrarian_tendency=0.2) == []


def test_a_contrarian_takes_its_profit():
    book = Book(cash=0, equity=100_000, positions={"XOM": 10})
    won = view(entry_prices={"XOM": 80.0})  # +25 % against a 19 % target
    assert act("contrarian", won, book, contrarian_tendency=0.9) == [("XOM", "sell")]


def test_news_momentum_buys_fresh_good_news_and_leaves_when_it_fades():
    assert act("news_momentum", view(news("AAPL", 0.7))) == [("AAPL", "buy")]
    assert act("news_momentum", view(news("AAPL", 0.7, hours_ago=30))) == []  # stale
    book = Book(cash=0, equity=100_000, positions={"AAPL": 5})
    old = view(held_since={"AAPL": NOW - timedelta(days=3)})
    assert act("news_momentum", old, book) == [("AAPL", "sell")]


def test_sector_rotation_follows_the_favoured_sector_within_preferences():
    market = view(news("XOM", 0.6), news("CVX", 0.5), news("AAPL", -0.4))
    assert act("sector_rotation", market) == [("XOM", "buy"), ("CVX", "buy")]
    assert act("sector_rotation", market, sector_preferences=["technology"]) == []


def test_market_cap_bias_filters_the_universe():
    assert act("event_driven", view(FDA_WIN), market_cap_bias="large") == []


def test_llm_analyst_follows_the_model_and_falls_back_to_its_twin_on_abstention():
    answer = {
        "abstained": False,
        "decisions": [
            {"symbol": "PFE", "action": "buy", "conviction": 0.6, "rationale": "pipeline"}
        ],
    }
    assert act("llm_analyst", view(assessment=answer)) == [("PFE", "buy")]
    abstained = view(news("AAPL", 0.7), assessment={"abstained": True, "reason": "budget"})
    assert act("llm_analyst", abstained) == act("news_momentum", abstained)


def test_a_failing_strategy_is_reported_not_fatal():
    broken = MarketView(prices=PRICES, news=[None], sectors=SECTORS, caps=CAPS)  # type: ignore[list-item]
    intents, error = propose_safely("news_momentum", person("news_momentum"), broken, CASH, NOW)
    assert intents == [] and error.startswith("strategy news_momentum failed: AttributeError")
    assert propose_safely("nope", {}, broken, CASH, NOW) == ([], "unknown strategy 'nope'")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_strategy_declares_the_interface(name):
    module = REGISTRY[name]
    assert name == module.NAME and module.VERSION >= 1 and module.__doc__
