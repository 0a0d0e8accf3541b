"""The soak's figures and curves: what was injected, what held, and what grew."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

from bench.figures import Figure
from bench.soak import Sample, Soak

WARM_MINUTES = 1.0  # of a daemon's life, before its RSS counts


def lives(samples: list[Sample]) -> list[list[Sample]]:
    """The samples of each life of the daemon, in order."""
    runs: list[list[Sample]] = []
    for sample in samples:
        if not runs or runs[-1][-1].daemon_pid != sample.daemon_pid:
            runs.append([])
        runs[-1].append(sample)
    return runs


def _rss(result: Soak) -> Figure:
    """Each daemon life's RSS after its warm-up: how it grew within the life, and whether
    lives late in the run end higher than early ones."""
    warm = [
        [s for s in life if s.minute - life[0].minute >= WARM_MINUTES]
        for life in lives(result.samples)
    ]
    warm = [life for life in warm if len(life) > 1]
    if not warm:
        return Figure("daemon RSS after warm-up", 0, "MiB", "flat", None, "no life long enough")
    longest = max(warm, key=lambda life: life[-1].minute - life[0].minute)
    growth = [life[-1].rss_mib - life[0].rss_mib for life in warm]
    ends = [life[-1].rss_mib for life in warm]
    half = len(ends) // 2 or 1
    return Figure(
        "daemon RSS after warm-up",
        longest[-1].rss_mib,
        "MiB",
        "flat",
        None,
        f"{len(warm)} lives; longest {longest[-1].minute - longest[0].minute:.1f} min: "
        f"{longest[0].rss_mib:.0f} → {longest[-1].rss_mib:.0f} MiB; growth within a life "
        f"median {statistics.median(growth):+.1f} MiB; lives end at median "
        f"{statistics.median(ends[:half]):.0f} MiB in the first half of the run, "
        f"{statistics.median(ends[half:] or ends):.0f} in the second",
    )


def figures(result: Soak) -> list[Figure]:
    """The soak's figures: faults, invariants, and what grew after the warm-up."""
    samples = result.samples
    warm = [s for s in samples if s.minute >= result.minutes * 0.2] or samples
    first, last = warm[0], warm[-1]
    span = f"{result.agents} agents, {result.minutes:g} min"
    return [
        Figure(
            "faults injected",
            sum(result.faults.values()),
            "",
            "",
            None,
            ", ".join(f"{k} {v}" for k, v in sorted(result.faults.items())),
        ),
        Figure(
            "invariants broken",
            len(result.violations),
            "",
            "0",
            not result.violations,
            "; ".join(result.violations[:5]) or f"all held; {result.filled} fills, none twice",
        ),
        _rss(result),
        Figure(
            "daemon file descriptors",
            last.fds,
            "",
            "flat",
            None,
            f"{first.fds} → {last.fds}, max {max(s.fds for s in warm)}; threads "
            f"{first.threads} → {last.threads}",
        ),
        Figure(
            "store size",
            last.store_mib,
            "MiB",
            "",
            None,
            f"{first.store_mib:.1f} → {last.store_mib:.1f} MiB after warm-up; log "
            f"{last.log_mib:.1f} MiB; {span}",
        ),
        Figure(
            "heartbeat age p50 / p99 (median over samples)",
            statistics.median(s.beat_p50 for s in samples),
            "s",
            "",
            None,
            f"p99 {statistics.median(s.beat_p99 for s in samples):.1f} s; "
            f"restarts {samples[-1].restarts}",
        ),
    ]


def plot(result: Soak, path: Path) -> None:
    """RSS, file descriptors, store size and heartbeat age against time, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    curves: tuple[tuple[str, Callable[[Sample], float]], ...] = (
        ("daemon RSS (MiB)", lambda s: s.rss_mib),
        ("daemon open files", lambda s: s.fds),
        ("store size (MiB)", lambda s: s.store_mib),
        ("heartbeat age p99 (s)", lambda s: s.beat_p99),
    )
    for ax, (label, value) in zip(axes.flat, curves, strict=True):
        for life in lives(result.samples):  # a break where the daemon was killed
            ax.plot([s.minute for s in life], [value(s) for s in life], color="tab:blue")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("minutes")
    total = sum(result.faults.values())
    fig.suptitle(
        f"soak: {result.agents} agents, {result.minutes:g} min, {total} faults, "
        f"{len(result.violations)} invariants broken"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
