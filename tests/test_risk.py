"""Risk rails: hand-picked cases, then hypothesis hunting for any breach of a limit."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from agent_runtime.risk import Book, Intent, RiskLimits, apply_rails

LIMITS = RiskLimits(
    max_position_fraction=0.15, max_positions=10, min_equity=1000.0, max_orders_per_day=20
)
PRICES = {"AAPL": 200.0, "MSFT": 400.0, "XOM": 100.0}


def rails(intents, book, prices=PRICES, **kw):
    args = {"position_fraction": 0.1, "orders_today": 0, "paused": False, "limits": LIMITS, **kw}
    return apply_rails(intents, book, prices, **args)


def test_a_confident_buy_is_sized_by_personality_and_capped_at_fifteen_percent():
    book = Book(cash=100_000, equity=100_000)
    (order,) = rails([Intent("AAPL", "buy", 1.0, "beat")], book).orders
    assert (order.qty, order.rationale) == (50, "beat")  # 10 % of equity at $200
    (bold,) = rails([Intent("AAPL", "buy", 1.0)], book, position_fraction=0.9).orders
    assert bold.qty == 75  # 15 % cap, however bold the personality


def test_paused_or_poor_agents_trade_nothing():
    intents = [Intent("AAPL", "buy", 1.0)]
    assert rails(intents, Book(100_000, 100_000), paused=True).dropped[0][1] == "fleet paused"
    assert rails(intents, Book(900, 900)).dropped[0][1] == "equity below $1,000"


def test_sells_never_exceed_holdings_and_unknown_prices_are_skipped():
    book = Book(cash=0, equity=50_000, positions={"XOM": 3.5})
    verdict = rails(
        [Intent("XOM", "sell", 1.0), Intent("AAPL", "sell", 1.0), Intent("NVDA", "buy", 1.0)], book
    )
    assert [(o.symbol, o.qty) for o in verdict.orders] == [("XOM", 3)]
    assert [reason for _, reason in verdict.dropped] == ["nothing to sell", "no valid price"]


def test_eleventh_position_and_daily_cap_are_refused():
    held = {f"S{i}": 1.0 for i in range(10)}
    book = Book(cash=100_000, equity=100_000, positions=held)
    assert rails([Intent("AAPL", "buy", 1.0)], book).dropped[0][1] == "already 10 positions"
    capped = rails([Intent("AAPL", "buy", 1.0)], Book(100_000, 100_000), orders_today=20)
    assert capped.dropped[0][1] == "daily order cap of 20 reached"


symbols = st.sampled_from(["AAPL", "MSFT", "XOM", "NVDA", "TSLA", "KO"])
prices = st.dictionaries(
    symbols,
    st.one_of(
        st.floats(min_value=0.01, max_value=5_000), st.just(math.nan), st.just(0.0), st.just(-1.0)
    ),
)
intents = st.lists(
    st.builds(
        Intent,
        symbols,
        st.sampled_from(["buy", "sell", "short"]),
        st.one_of(st.floats(min_value=-2, max_value=3), st.just(math.nan), st.just(math.inf)),
    ),
    max_size=15,
)
books = st.builds(
    Book,
    cash=st.floats(min_value=0, max_value=1e7),
    equity=st.floats(min_value=0, max_value=1e7),
    positions=st.dictionaries(symbols, st.floats(min_value=0, max_value=1e4), max_size=6),
)


@settings(max_examples=400, deadline=None)
@given(
    intents, books, prices, st.floats(min_value=0, max_value=1), st.integers(0, 25), st.booleans()
)
def test_no_sequence_of_intents_and_prices_breaches_a_limit(
    intents, book, prices, fraction, orders_today, paused
):
    verdict = apply_rails(
        intents,
        book,
        prices,
        position_fraction=fraction,
        orders_today=orders_today,
        paused=paused,
        limits=LIMITS,
    )
    orders = verdict.orders
    assert len(orders) + len(verdict.dropped) == len(intents)
    if paused or book.equity < LIMITS.min_equity:
        assert orders == []
        return
    assert len(orders) <= max(0, LIMITS.max_orders_per_day - orders_today)
    held = {s: q for s, q in book.positions.items() if q > 0}
    cash = book.cash
    for order in orders:
        price = prices[order.symbol]
        assert isinstance(order.qty, int) and order.qty >= 1
        assert math.isfinite(price) and price > 0
        assert order.side in ("buy", "sell")
        if order.side == "sell":
            assert order.qty <= held.get(order.symbol, 0) + 1e-9
            held[order.symbol] -= order.qty
            cash += order.qty * price
        else:
            assert order.symbol in held or len(held) < LIMITS.max_positions
            cost = order.qty * price
            assert cost <= cash + 1e-6
            after = (held.get(order.symbol, 0) + order.qty) * price
            assert after <= book.equity * LIMITS.max_position_fraction + 1e-6
            held[order.symbol] = held.get(order.symbol, 0) + order.qty
            cash -= cost
        held = {s: q for s, q in held.items() if q > 1e-9}
