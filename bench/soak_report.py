"""The soak's figures and curves: what was injected, what held, and what grew."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.figures import Figure
from bench.soak import Soak


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
        Figure(
            "daemon RSS after warm-up",
            last.rss_mib,
            "MiB",
            "flat",
            None,
            f"{first.rss_mib:.0f} → {last.rss_mib:.0f} MiB, max {max(s.rss_mib for s in warm):.0f}",
        ),
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

    minutes = [s.minute for s in result.samples]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    for ax, (label, values) in zip(
        axes.flat,
        (
            ("daemon RSS (MiB)", [s.rss_mib for s in result.samples]),
            ("daemon open files", [s.fds for s in result.samples]),
            ("store size (MiB)", [s.store_mib for s in result.samples]),
            ("heartbeat age p99 (s)", [s.beat_p99 for s in result.samples]),
        ),
        strict=True,
    ):
        ax.plot(minutes, values)
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
