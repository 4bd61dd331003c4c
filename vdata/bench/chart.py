"""The PNG chart of a run: per mode, each contender's ratio to asyncpg pool per operation."""

from __future__ import annotations

__all__ = ["chart"]

from pathlib import Path

POOL, TUNED = "asyncpg pool", "asyncpg tuned"


def chart(s: dict[str, dict[str, dict[str, dict[str, float]]]], path: Path) -> None:
    """Write a PNG: per mode, the ratio to asyncpg pool of each contender per operation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in ("latency", "throughput") if m in s]
    fig, axes = plt.subplots(len(modes), 1, figsize=(11, 4 * max(len(modes), 1)), squeeze=False)
    for ax, mode in zip(axes[:, 0], modes, strict=False):
        ops = list(s[mode])
        names = sorted({n for op in ops for n in s[mode][op]}, key=_order)
        width = 0.8 / max(len(names), 1)
        for i, name in enumerate(names):
            values = [s[mode][op].get(name, {}).get("x_pool_median", 0.0) for op in ops]
            xs = [k + (i - (len(names) - 1) / 2) * width for k in range(len(ops))]
            ax.bar(xs, values, width, label=name)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(ops)), ops, rotation=15)
        ax.set_ylabel("x asyncpg pool (higher is faster)")
        ax.set_title(
            f"{mode}: {'1 connection, sequential' if mode == 'latency' else 'pool of 10, 64 tasks'}"
        )
        ax.legend(fontsize=8, ncol=len(names))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _order(name: str) -> int:
    order = ["vdata pool", "vdata tx", POOL, TUNED, "sqlalchemy"]
    return order.index(name) if name in order else len(order)
