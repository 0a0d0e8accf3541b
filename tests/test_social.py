"""The social layer's policy, purely: whom an agent follows and how a followed account's
trade moves its decision, from hand-built views and candidates. Then the agent's circle,
which reads the platform, against a stand-in scripted with what the sandbox cannot be made
to answer on cue (a person's name holding a NUL, a loser off the top of a large board)."""

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from agent_runtime.account import AccountLink
from agent_runtime.circle import Circle
from agent_runtime.contract import PlatformAccess
from agent_runtime.risk import Book
from agent_runtime.social import FIRST_FOLLOWS, Candidate, appeal, budget, review, sample_graph
from agent_runtime.strategies import contrarian, news_momentum
from agent_runtime.strategies._base import MarketView, NewsView, SocialView, mood_by_symbol
from orchestrator.tools.harness import serve
from orchestrator.tools.scripted import ScriptedApp
from personalities import load_population, sample
from platform_client import PlatformClient

NOW = datetime(2026, 3, 2, 15, tzinfo=UTC)


def _fleet(n, seed):
    people = sample(n, seed, load_population("balanced"))
    personalities = {f"a{i:03d}": p.model_dump() for i, p in enumerate(people)}
    rng = random.Random(seed)
    returns = {a: rng.gauss(0, 0.04) for a in personalities}
    sectors = {a: frozenset(p["sector_preferences"][:1]) for a, p in personalities.items()}
    return personalities, returns, sectors


def test_the_follow_graph_is_seeded_reproducible_and_heavy_tailed():
    personalities, returns, sectors = _fleet(300, 7)
    graph = sample_graph(personalities, returns, sectors, seed=3)
    assert graph == sample_graph(personalities, returns, sectors, seed=3)
    assert graph != sample_graph(personalities, returns, sectors, seed=4)
    followers = Counter(f for follows in graph.values() for f in follows)
    counts = sorted((followers[a] for a in personalities), reverse=True)
    mean = sum(counts) / len(counts)
    # A few become famous and most do not: with as many follows handed out evenly (a
    # Poisson graph of the same mean, about 7) the most followed would have about 15.
    assert counts[0] > 10 * mean
    assert sum(counts[:30]) / sum(counts) > 0.5  # the top tenth holds most follows
    assert counts[len(counts) // 2] <= 1  # the median agent is all but unknown
    for agent, follows in graph.items():
        assert agent not in follows and len(follows) <= budget(personalities[agent])


def test_how_many_and_whom_an_agent_follows_depend_on_its_personality():
    assert budget({"sentiment_weight": 0}) == 2 and budget({"sentiment_weight": 1}) == 12
    me = {"sector_preferences": ["Energy"], "contrarian_tendency": 0.1}
    winner, loser = Candidate("w", 0.08, 3), Candidate("l", -0.08, 3)
    assert appeal(me, winner) > 4 * appeal(me, loser)  # recent winners draw it
    assert appeal(me, Candidate("p", 0, 30)) > appeal(me, Candidate("q", 0, 3))  # and the popular
    oil, tech = (
        Candidate("o", 0, 3, frozenset({"Energy"})),
        Candidate("t", 0, 3, frozenset({"Tech"})),
    )
    assert appeal(me, oil) > 4 * appeal(me, tech)  # its own sectors catch its eye
    contrary = {**me, "contrarian_tendency": 0.9}
    assert appeal(contrary, winner) == appeal(contrary, loser)  # it follows the crowd's darlings
    assert appeal(contrary, Candidate("p", 0, 30)) / appeal(contrary, Candidate("q", 0, 3)) > (
        appeal(me, Candidate("p", 0, 30)) / appeal(me, Candidate("q", 0, 3))
    )


def test_follows_change_at_a_human_pace():
    me = {"sentiment_weight": 0.5, "sector_preferences": ["Tech"]}
    board = [Candidate(f"u{i}", 0.02 * (i % 5) - 0.05, i % 4) for i in range(30)]
    first = review(me, "u0", board, (), random.Random(1), first=True)
    assert len(first.follow) == FIRST_FOLLOWS and not first.unfollow and "u0" not in first.follow
    assert first == review(me, "u0", board, (), random.Random(1), first=True)  # seeded

    following = set(first.follow) | {"u5"}  # u5 has lost 5 %
    later = review(me, "u0", board, following, random.Random(2), first=False)
    worst = sorted((c.return_, c.user_id) for c in board if c.user_id in following)[0]
    assert worst[0] <= -0.03 and later.unfollow == (worst[1],)  # the worst loser goes…
    assert len(later.follow) == 1 and later.follow[0] not in following  # …one comes
    steady = {c.user_id for c in board if c.return_ > 0}
    calm = review(me, "u0", board, steady, random.Random(3), first=False)
    assert calm == review(me, "u0", board, steady, random.Random(3), first=False)
    assert calm.unfollow == () and calm.follow == ()  # no loser, and it follows enough
    assert len(steady) >= budget(me)


def _view(score=0.3, social=(), symbol="AAPL"):
    news = [NewsView(symbol, score, 1.0, None, NOW - timedelta(hours=2), id="n1")]
    return MarketView(
        prices={symbol: 100.0, "XOM": 50.0},
        news=news,
        sectors={symbol: "Technology", "XOM": "Energy"},
        caps={symbol: "large", "XOM": "large"},
        returns={symbol: -0.08},
        social=[SocialView(s, side, "famous-fox", NOW - timedelta(hours=1)) for s, side in social],
    )


def _momentum(sentiment_weight, contrarian_tendency=0.0):
    return {
        "strategy": "news_momentum",
        "news_weight": 0.5,  # buys from a mood of 0.425
        "sentiment_weight": sentiment_weight,
        "contrarian_tendency": contrarian_tendency,
        "sector_preferences": ["Technology"],
        "market_cap_bias": "mixed",
    }


def _buys(personality, view):
    intents = news_momentum.propose(personality, view, Book(100_000, 100_000), NOW)
    return [i for i in intents if i.side == "buy"]


def test_a_followed_buy_moves_a_social_follower_toward_buying_and_a_contrarian_away():
    quiet, crowd = _view(), _view(social=[("AAPL", "buy")])
    social = _momentum(sentiment_weight=1.0)
    assert _buys(social, quiet) == []  # +0.30 of news alone is not enough…
    (buy,) = _buys(social, crowd)  # …with a followed account buying, it is
    assert buy.symbol == "AAPL" and "+0.55" in buy.rationale

    contrary = _momentum(sentiment_weight=1.0, contrarian_tendency=1.0)
    since = NOW - timedelta(days=1)
    assert (
        mood_by_symbol(contrary, crowd, since)["AAPL"]
        < mood_by_symbol(contrary, quiet, since)["AAPL"]
    )
    assert _buys(contrary, _view(score=0.5, social=[("AAPL", "buy")])) == []
    assert _buys(contrary, _view(score=0.5)) != []  # the news alone would have bought

    deaf = _momentum(sentiment_weight=0.0)
    for view in (_view(score=0.5), _view(score=0.3)):
        loud = _view(score=view.news[0].score, social=[("AAPL", "buy"), ("AAPL", "buy")])
        assert _buys(deaf, view) == _buys(deaf, loud)  # a zero weight hears nothing


def test_the_contrarian_strategy_stays_out_of_what_its_crowd_buys():
    mind = {
        "contrarian_tendency": 0.9,
        "sentiment_weight": 0.8,
        "sector_preferences": ["Technology"],
        "market_cap_bias": "mixed",
    }
    book = Book(100_000, 100_000)

    def conviction(view, personality=mind):
        (intent,) = contrarian.propose(personality, view, book, NOW)
        return intent.conviction

    hated = conviction(_view(score=-0.6))
    assert conviction(_view(score=-0.6, social=[("AAPL", "buy")])) < hated
    assert conviction(_view(score=-0.6, social=[("AAPL", "sell")])) > hated
    deaf = {**mind, "sentiment_weight": 0.0}
    assert conviction(_view(score=-0.6, social=[("AAPL", "buy")]), deaf) == conviction(
        _view(score=-0.6), deaf
    )


def test_following_is_not_copying():
    """A followed account's trades only move the mood: no order for a name outside the
    follower's sectors, and no sale of what the follower does not hold."""
    mind = _momentum(sentiment_weight=1.0)
    view = _view(score=0.0, social=[("XOM", "buy"), ("XOM", "buy"), ("AAPL", "sell")])
    intents = news_momentum.propose(mind, view, Book(100_000, 100_000), NOW)
    assert intents == []


def test_a_followed_persons_name_reaches_the_decision_without_a_nul():
    """People name themselves: a NUL in a name would make the decision's record refused
    (PostgreSQL cannot keep one), and with it the agent's batch of records."""
    trade = {
        "order_id": "o-1",
        "user_id": "u-1",
        "display_name": "Ann\x00ie " * 10,
        "symbol": "AAPL",
        "side": "buy",
        "qty": 3,
        "price": 101.0,
        "at": NOW.isoformat(),
    }
    platform = ScriptedApp().on("/api/social/feed", (200, {"trades": [trade]}, {}))
    platform.on(
        "/api/auth/login",
        (200, {"access_token": "t", "token_type": "bearer", "expires_in": 3600}, {}),
    )
    with serve(platform) as url:
        account = AccountLink(PlatformAccess("ann", "pw"), PlatformClient(url, deadline=5))
        account.login()
        circle = Circle("a-1", {}, account)
        circle.following = {"u-1"}
        (seen,) = circle.trades(NOW)
    assert seen.followee == ("Ann\ufffdie " * 10)[:40] and seen.symbol == "AAPL"


def test_a_losing_followee_off_the_top_of_the_board_is_still_let_go():
    """In a fleet larger than the board an agent reads, a loser sinks off its top rows; the
    review reads its followees' own rows as well, so it can still unfollow one."""

    def board(*rows):
        accounts = [
            {"user_id": u, "display_name": u, "return": r, "followers": 1, "symbols": []}
            for u, r in rows
        ]
        return (200, {"accounts": accounts, "as_of": NOW.isoformat()}, {})

    platform = ScriptedApp()
    platform.on(
        "/api/auth/login",
        (200, {"access_token": "t", "token_type": "bearer", "expires_in": 3600}, {}),
    )
    platform.on("/api/subscriptions", (200, {"following": ["u-loser", "u-even"]}, {}))
    platform.on(
        "/api/social/leaderboard",
        board(("u-star", 0.09), ("u-good", 0.05)),  # the top rows
        board(("u-even", 0.0), ("u-loser", -0.08)),  # the followees' rows
    )
    platform.on("/api/subscriptions/u-loser", (200, {}, {}))
    with serve(platform) as url:
        account = AccountLink(PlatformAccess("ann", "pw"), PlatformClient(url, deadline=5))
        # Wants 2 follows. Its first review in this process, but it follows accounts
        # already (it restarted): a daily review, which may let one go.
        circle = Circle("a-1", {"sentiment_weight": 0.0}, account)
        assert circle.review(NOW, {}) is None
    assert [s.query for s in platform.seen if s.path == "/api/social/leaderboard"] == [
        {"limit": "200"},
        {"limit": "200", "following": "true"},
    ]
    assert platform.hits("/api/subscriptions/u-loser") == 1
    assert len(circle.following) == 2 and "u-loser" not in circle.following


def test_a_process_started_the_day_its_agent_followed_reviews_no_more_that_day():
    """Each restart made a second review on the same market day, and each review followed
    one more account. A process told by its bootstrap (`followed_at`) that its agent
    followed someone today only reads whom it follows, for the social feed; the next
    market day it reviews."""
    platform = ScriptedApp()
    platform.on(
        "/api/auth/login",
        (200, {"access_token": "t", "token_type": "bearer", "expires_in": 3600}, {}),
    )
    following = (200, {"following": ["u-1"], "followers": []}, {})
    platform.on("/api/subscriptions", following, following, (201, {}, {}))
    accounts = [
        {"user_id": u, "display_name": u, "return": 0.02, "followers": 1, "symbols": []}
        for u in ("u-1", "u-2")
    ]
    platform.on("/api/social/leaderboard", (200, {"accounts": accounts, "as_of": "x"}, {}))
    with serve(platform) as url:
        account = AccountLink(PlatformAccess("ann", "pw"), PlatformClient(url, deadline=5))
        earlier = NOW - timedelta(hours=3)
        circle = Circle("a-1", {"sentiment_weight": 1.0}, account, followed_on=earlier)
        assert circle.review(NOW, {}) is None
        assert circle.following == {"u-1"}  # the feed is read for it
        assert platform.hits("/api/social/leaderboard") == 0
        assert platform.hits("/api/subscriptions") == 1

        assert circle.review(NOW + timedelta(days=1), {}) is None
    assert platform.hits("/api/social/leaderboard") == 2
    (follow,) = [s for s in platform.seen if s.path == "/api/subscriptions" and s.body]
    assert json.loads(follow.body) == {"user_id": "u-2"}
    assert circle.following == {"u-1", "u-2"}
