"""The simulated market: prices are a deterministic function of (seed, market time)."""

import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest

from feeds.clock import MarketClock
from feeds.market import ORIGIN, SimulatedMarket, UnknownSymbol
from feeds.scorer import score  # what the gateway scores headlines with
from feeds.universe import SECTORS, UNIVERSE, security

AT = ORIGIN + timedelta(days=37, hours=5, minutes=13)


def test_every_symbol_starts_at_its_start_price():
    market = SimulatedMarket(3)
    assert market.prices(ORIGIN) == {s.symbol: s.start_price for s in UNIVERSE}


def test_same_seed_same_prices_in_another_process():
    here = SimulatedMarket(11).price("NVDA", AT)
    code = (
        "from datetime import datetime;from feeds.market import SimulatedMarket;"
        f"print(SimulatedMarket(11).price('NVDA', datetime.fromisoformat('{AT.isoformat()}')))"
    )
    there = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
    )
    assert float(there.stdout) == here


def test_different_seeds_give_different_paths():
    assert SimulatedMarket(1).prices(AT) != SimulatedMarket(2).prices(AT)


def test_prices_move_continuously_and_stay_positive():
    market = SimulatedMarket(5)
    minute = [market.price("TSLA", AT + timedelta(minutes=m)) for m in range(0, 240)]
    steps = [abs(math.log(b / a)) for a, b in pairwise(minute)]
    assert max(steps) < 0.02  # one-minute moves are small
    assert len(set(minute)) > 100  # and they do move
    year = [
        market.price(s.symbol, ORIGIN + timedelta(days=d))
        for s in UNIVERSE
        for d in range(0, 365, 30)
    ]
    assert min(year) >= 0.01


def test_stocks_of_one_sector_move_together():
    market = SimulatedMarket(9)
    days = [ORIGIN + timedelta(days=d) for d in range(1, 200)]

    def returns(symbol):
        p = [market.price(symbol, d) for d in days]
        return [math.log(b / a) for a, b in pairwise(p)]

    def corr(x, y):
        mx, my = sum(x) / len(x), sum(y) / len(y)
        cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
        return cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))

    same = corr(returns("XOM"), returns("CVX"))  # both energy, beta 0.8
    other = corr(returns("XOM"), returns("MSFT"))
    assert same > 0.25 and same > abs(other) + 0.15


def test_unknown_symbol_is_refused():
    with pytest.raises(UnknownSymbol):
        SimulatedMarket(1).price("ZZZZ", AT)
    assert security("aapl").symbol == "AAPL"
    assert len(SECTORS) >= 8 and {s.market_cap for s in UNIVERSE} == {"large", "mid", "small"}


def test_clock_runs_time_scale_times_faster_from_its_anchor():
    wall = [datetime(2026, 5, 1, tzinfo=UTC)]
    anchor = datetime(2026, 5, 1, tzinfo=UTC)
    slept = []
    clock = MarketClock(60, anchor, wall=lambda: wall[0], wall_sleep=slept.append)
    assert clock.now() == anchor
    wall[0] += timedelta(seconds=10)
    assert clock.now() == anchor + timedelta(minutes=10)
    clock.sleep(120)
    assert slept == [2.0]
    with pytest.raises(ValueError):
        MarketClock(0)


def test_events_move_the_price_the_way_their_news_reads():
    market = SimulatedMarket(42)
    symbols = [s.symbol for s in UNIVERSE]
    events = market.events(symbols, ORIGIN, ORIGIN + timedelta(days=120))
    assert len(events) > 100
    assert events == sorted(events, key=lambda e: e.at, reverse=True)
    assert events == market.events(symbols, ORIGIN, ORIGIN + timedelta(days=120))
    agree = 0
    for e in events:
        before = market.price(e.symbol, e.at - timedelta(minutes=1))
        after = market.price(e.symbol, e.at + timedelta(minutes=1))
        agree += (after > before) == e.positive
        assert score(e.headline).label == ("positive" if e.positive else "negative") or (
            score(e.headline).label == "neutral"
        )
    assert agree / len(events) > 0.95  # the jump dominates two minutes of noise
    readable = sum(score(e.headline).label != "neutral" for e in events)
    assert readable / len(events) > 0.85


def test_fda_events_happen_only_to_healthcare_names():
    market = SimulatedMarket(3)
    events = market.events([s.symbol for s in UNIVERSE], ORIGIN, ORIGIN + timedelta(days=365))
    assert {security(e.symbol).sector for e in events if e.event_type == "fda"} == {"healthcare"}


def test_the_daily_walk_is_a_brownian_motion():
    from feeds.market import _BrownianPath

    paths = [_BrownianPath(f"check:{k}") for k in range(3000)]
    early = [p.at(100) for p in paths]
    later = [p.at(300) - p.at(100) for p in paths]  # an increment, independent of `early`

    def variance(xs: list[float]) -> float:
        mean = sum(xs) / len(xs)
        return sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)

    assert 90 < variance(early) < 110  # Var W(t) = t
    assert 180 < variance(later) < 220
    covariance = sum(a * b for a, b in zip(early, later, strict=True)) / len(paths)
    assert abs(covariance) < 0.1 * math.sqrt(variance(early) * variance(later))


def test_a_price_centuries_from_the_origin_costs_what_one_near_it_does():
    from feeds import events
    from feeds import market as prices

    def draws(at: datetime) -> tuple[int, int]:
        """The random draws one price at `at` makes: walk nodes and event days."""
        for cache in (prices._gauss, prices._at_day, events.event_on, events._moving):
            cache.cache_clear()
        price = SimulatedMarket(3).price("JPM", at)
        assert price >= 0.01
        return prices._gauss.cache_info().misses, events.event_on.cache_info().misses

    near = draws(ORIGIN + timedelta(days=2))
    far = draws(ORIGIN + timedelta(days=365 * 400))
    # two paths (sector and own), four days (at and origin, each with the next), one node
    # per halving; two windows of event days (at and origin)
    for walk, event_days in (near, far):
        assert walk <= 2 * 4 * (prices.LEVELS + 1)
        assert event_days <= 2 * (math.ceil(events.MAX_DRIFT_DAYS + events.FADE_DAYS) + 3)
