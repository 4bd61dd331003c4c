"""The PNG chart of a run: per mode, each contender's speed against plain asyncpg.

One panel per mode (latency, throughput) on one shared y-scale. Each bar is
the median over repeats of the contender's speed divided by the asyncpg pool's
in the same repeat; its error bar spans the measured minimum to maximum. The
baseline itself is the line at 1.0, not a bar. vdata's bars stand next to
tuned asyncpg's, the comparison a reader looks for; the machine, the date and
the PostgreSQL version are printed on the image.
"""

from __future__ import annotations

__all__ = ["chart", "unavailable"]

import importlib.util
from pathlib import Path
from typing import Any

POOL, TUNED = "asyncpg pool", "asyncpg tuned"
# Left to right in each group; the baseline (asyncpg pool) is the 1.0 line.
_ORDER = ("vdata pool", "vdata tx", TUNED, "sqlalchemy")
_COLOURS = {
    "vdata pool": "#1f77b4",
    "vdata tx": "#6baed6",
    TUNED: "#d62728",
    "sqlalchemy": "#7f7f7f",
}
_MODE_TITLE = {
    "latency": "latency: 1 connection, sequential calls",
    "throughput": "throughput: pool of {pool}, {tasks} concurrent tasks",
}

Summary = dict[str, dict[str, dict[str, dict[str, float]]]]


def unavailable() -> str | None:
    """Return why no chart can be drawn here (matplotlib missing), or None."""
    if importlib.util.find_spec("matplotlib") is None:
        return "matplotlib is not installed (pip install 'vdata-pg[bench]')"
    return None


def chart(s: Summary, path: Path, *, machine: dict[str, Any], started: str, config: Any) -> None:
    """Write the PNG of summary *s* to *path*."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in ("latency", "throughput") if m in s]
    fig, axes = plt.subplots(
        len(modes), 1, figsize=(11, 1.6 + 3.8 * max(len(modes), 1)), squeeze=False, sharey=True
    )
    tallest = max(
        (
            st["x_pool_median"]
            for m in modes
            for op in s[m].values()
            for st in op.values()
            if "x_pool_median" in st
        ),
        default=1.0,
    )
    # One scale for both panels, set by the medians: a whisker that a noisy
    # repeat stretched far above them is cut at the top and its value printed.
    top = max(1.5, 1.35 * tallest)
    for ax, mode in zip(axes[:, 0], modes, strict=False):
        ops = list(s[mode])
        names = [n for n in _ORDER if any(n in s[mode][op] for op in ops)]
        width = 0.8 / max(len(names), 1)
        for i, name in enumerate(names):
            xs, medians, below, above = [], [], [], []
            for k, op in enumerate(ops):
                stats = s[mode][op].get(name, {})
                if "x_pool_median" not in stats:
                    continue
                median = stats["x_pool_median"]
                xs.append(k + (i - (len(names) - 1) / 2) * width)
                medians.append(median)
                below.append(median - stats["x_pool_min"])
                above.append(min(stats["x_pool_max"], top) - median)
                if stats["x_pool_max"] > top:
                    ax.annotate(
                        f"max {stats['x_pool_max']:.1f}",
                        (xs[-1], top),
                        ha="center",
                        va="top",
                        rotation=90,
                        fontsize=6,
                        xytext=(0, -2),
                        textcoords="offset points",
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5},
                    )
            ax.bar(
                xs,
                medians,
                width,
                yerr=[below, above],
                capsize=2,
                error_kw={"linewidth": 0.8},
                label=name,
                color=_COLOURS.get(name),
            )
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--", label="asyncpg pool = 1.0")
        ax.set_xticks(range(len(ops)), ops, rotation=15)
        ax.set_ylabel("speed vs asyncpg pool\n(higher is faster)")
        ax.set_title(
            _MODE_TITLE[mode].format(
                pool=getattr(config, "pool_size", "?"), tasks=getattr(config, "tasks", "?")
            ),
            fontsize=10,
        )
        ax.grid(axis="y", linewidth=0.3)
        ax.set_ylim(0, top)
    repeats = getattr(config, "repeats", "?")
    fig.suptitle(
        f"vdata against asyncpg (bars: median of {repeats} interleaved repeats, whiskers: min-max)"
        f"\n{started} - PostgreSQL {machine.get('postgresql', '?')} - {machine.get('nproc', '?')} "
        f"CPUs ({machine.get('cpu', '?')}) - Python {machine.get('python', '?')}, "
        f"asyncpg {machine.get('asyncpg', '?')}, vdata {machine.get('vdata', '?')}",
        fontsize=9,
    )
    # One legend for both panels, between the title and the first panel.
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="upper center",
        ncol=len(labels),
        fontsize=8,
        bbox_to_anchor=(0.5, 0.94),
        frameon=False,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(path, dpi=90)
    plt.close(fig)
