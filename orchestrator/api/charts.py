"""Charts as plain SVG geometry for the pages' templates: line charts (`_chart.html`), a
plot area with labelled axes (dollars, and times in UTC), one polyline per series and a
legend; and the follow graph (`social.html`). No JavaScript, no library: the page is
readable as served."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

PALETTE = ("#0969da", "#1a7f37", "#cf222e", "#8250df", "#bf8700", "#1b7c83", "#953800")
_LEFT, _RIGHT, _TOP, _BOTTOM = 78, 36, 10, 34  # margins around the plot area, in pixels:
# on the right, half the widest time label ("12-06 16:00"), centred on the last tick
_TICKS = 4


@dataclass(frozen=True)
class Line:
    """One series, drawn as an SVG polyline."""

    name: str
    colour: str
    points: str
    last: float


@dataclass(frozen=True)
class Chart:
    """Everything `_chart.html` draws: the plot box, the lines, and the axes' ticks as
    (position in pixels, label)."""

    title: str
    width: int
    height: int
    lines: list[Line] = field(default_factory=list)
    y_ticks: list[tuple[float, str]] = field(default_factory=list)
    x_ticks: list[tuple[float, str]] = field(default_factory=list)
    signed: bool = False  # the legend shows each line's last value with its sign (P&L)

    @property
    def left(self) -> int:
        return _LEFT

    @property
    def right(self) -> int:
        return self.width - _RIGHT

    @property
    def top(self) -> int:
        return _TOP

    @property
    def bottom(self) -> int:
        return self.height - _BOTTOM


def _money(value: float) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.0f}"


def _time_label(moment: datetime, span_seconds: float) -> str:
    if span_seconds < 600:
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%H:%M" if span_seconds < 86400 else "%m-%d %H:%M")


def line_chart(
    title: str,
    series: dict[str, list[tuple[datetime, float]]],
    width: int = 640,
    height: int = 200,
    signed: bool = False,
) -> Chart:
    """A chart of each named series of (UTC moment, value) in dollars; series with fewer
    than two points are left out, and so is the whole chart when none is left (no lines)."""
    drawn = {name: points for name, points in series.items() if len(points) >= 2}
    if not drawn:
        return Chart(title, width, height, signed=signed)
    moments = [at for points in drawn.values() for at, _ in points]
    values = [v for points in drawn.values() for _, v in points]
    start, end = min(moments), max(moments)
    low, high = min(values), max(values)
    if high == low:
        low, high = low - 1, high + 1
    span = (end - start).total_seconds() or 1.0
    box = Chart(title, width, height)

    def x(at: datetime) -> float:
        return box.left + (at - start).total_seconds() / span * (box.right - box.left)

    def y(value: float) -> float:
        return box.bottom - (value - low) / (high - low) * (box.bottom - box.top)

    lines = [
        Line(
            name,
            PALETTE[i % len(PALETTE)],
            " ".join(f"{x(at):.1f},{y(v):.1f}" for at, v in points),
            points[-1][1],
        )
        for i, (name, points) in enumerate(sorted(drawn.items()))
    ]
    step = (high - low) / _TICKS
    y_ticks = [(y(low + k * step), _money(low + k * step)) for k in range(_TICKS + 1)]
    x_ticks = [
        (x(at), _time_label(at, span))
        for at in (start + (end - start) * k / _TICKS for k in range(_TICKS + 1))
    ]
    return Chart(title, width, height, lines, y_ticks, x_ticks, signed)


LABELLED = 8  # how many of the most followed agents have their names beside their dots
_CHAR, _LINE = 7.0, 14.0  # a 12 px name's width per character and its height, about
_GAP = 3.0  # at the least, between two dots
_GOLDEN = math.pi * (3 - math.sqrt(5))  # the golden angle, in radians
_EDGE_OPACITY, _CLEAR_EDGES = 0.35, 300  # up to that many edges, each is drawn as clearly
Box = tuple[float, float, float, float]  # left, top, right, bottom


@dataclass(frozen=True)
class Node:
    """An agent in the follow graph: its place, its size (by followers), its name, and
    where its name is drawn (`label_x`, None for none) with which SVG text-anchor."""

    name: str
    followers: int
    x: float
    y: float
    r: float
    label_x: float | None = None
    anchor: str = "start"


@dataclass(frozen=True)
class Graph:
    """Everything `social.html` draws: nodes, and edges as (x1, y1, x2, y2), each from a
    follower's centre to the rim of the agent it follows (where its arrowhead goes)."""

    size: int
    nodes: list[Node]
    edges: list[tuple[float, float, float, float]]
    edge_opacity: float  # fainter the more edges there are, so they never hide the dots
    arrow_opacity: float  # and their arrowheads with them


def follow_graph(graph: dict, size: int = 560) -> Graph:
    """Lay out the follow graph as a sunflower, the most followed at the centre: dot i's
    ray turns by the golden angle from dot i−1's, and the dot sits on it as near the
    centre as it can without covering a dot placed before it. Dots are sized by
    √(followers + 1); the whole is then stretched or shrunk to fill the graph, the dots
    shrunk with it but never stretched. The most followed are named, each on the side of
    its dot toward the centre, or else the other, where its name covers no name before it."""
    found = graph["nodes"]  # most followed first
    radii = [3 + 2.5 * math.sqrt(node["followers"]) for node in found]
    places = _packed(radii)
    room = size / 2 - 20
    spread = [(math.hypot(*p), r) for p, r in zip(places, radii, strict=True)]
    extent = max((out + r for out, r in spread), default=room)
    if extent > room:  # too big: shrink it all
        stretch = shrink = room / extent
    else:  # spread the dots out until the outermost one's rim meets the room's
        stretch = min(((room - r) / out for out, r in spread if out > 0), default=1.0)
        shrink = 1.0
    nodes: list[Node] = []
    taken: list[Box] = []  # the names drawn so far
    for i, (node, (dx, dy), r) in enumerate(zip(found, places, radii, strict=True)):
        x, y, r = size / 2 + stretch * dx, size / 2 + stretch * dy, r * shrink
        named = i < LABELLED and node["followers"] > 0
        label = _label(x, y, r, node["name"], size, taken) if named else None
        if label is not None:
            taken.append(label[2])
        nodes.append(
            Node(
                node["name"],
                node["followers"],
                round(x, 1),
                round(y, 1),
                round(r, 1),
                None if label is None else round(label[0], 1),
                "start" if label is None else label[1],
            )
        )
    at = {n.name: n for n in nodes}
    edges = [
        _to_rim(at[e["from"]], at[e["to"]])
        for e in graph["edges"]
        if e["from"] in at and e["to"] in at
    ]
    faint = max(0.15, min(1.0, math.sqrt(_CLEAR_EDGES / max(1, len(edges)))))
    return Graph(size, nodes, edges, round(_EDGE_OPACITY * faint, 3), round(faint, 3))


def _packed(radii: list[float]) -> list[tuple[float, float]]:
    """Each dot's centre about the graph's: on its golden-angle ray, at the least distance
    that keeps it `_GAP` clear of every dot before it."""
    centres, sizes, norms = np.zeros((len(radii), 2)), np.asarray(radii), np.zeros(len(radii))
    for i, r in enumerate(radii):
        ray = np.array([math.cos(i * _GOLDEN), math.sin(i * _GOLDEN)])
        # along the ray, dot j is in the way between `along` ± √`square`, if square > 0
        along = centres[:i] @ ray
        square = along**2 - norms[:i] + (sizes[:i] + r + _GAP) ** 2
        near = square > 0
        half = np.sqrt(square[near])
        starts, ends = along[near] - half, along[near] + half
        order = np.argsort(starts)
        distance = 0.0
        for start, end in zip(starts[order].tolist(), ends[order].tolist(), strict=True):
            if start >= distance:
                break  # the rest begin further out still
            distance = max(distance, end)
        centres[i] = distance * ray
        norms[i] = distance**2
    return [(float(x), float(y)) for x, y in centres]


def _label(
    x: float, y: float, r: float, name: str, size: int, taken: list[Box]
) -> tuple[float, str, Box] | None:
    """Where the name of the dot at (`x`, `y`) of radius `r` goes (see `_name_place`): on
    the side toward the centre, else on the other, wherever it stays inside the graph and
    covers none of the names `taken`; None where neither does."""
    for left in (x > size / 2, x <= size / 2):
        start, anchor, box = _name_place(x, y, r, name, left)
        if box[0] >= 0 and box[2] <= size and not any(_overlap(box, b) for b in taken):
            return start, anchor, box
    return None


def _name_place(x: float, y: float, r: float, name: str, left: bool) -> tuple[float, str, Box]:
    """Where the name of the dot at (`x`, `y`) of radius `r` starts, its SVG text-anchor,
    and the box it covers, on the `left` of the dot or on its right."""
    width, top, bottom = _CHAR * len(name), y - _LINE / 2, y + _LINE / 2
    if left:
        return x - r - 3, "end", (x - r - 3 - width, top, x - r - 3, bottom)
    return x + r + 3, "start", (x + r + 3, top, x + r + 3 + width, bottom)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _to_rim(a: Node, b: Node) -> tuple[float, float, float, float]:
    """The edge from `a`'s centre to `b`'s rim."""
    dx, dy = b.x - a.x, b.y - a.y
    length = math.hypot(dx, dy) or 1.0
    cut = min(b.r, length) / length
    return a.x, a.y, round(b.x - dx * cut, 1), round(b.y - dy * cut, 1)
