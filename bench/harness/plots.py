"""What every plot shares: log-log axes and saving a figure beside BENCHMARKS.md."""

from __future__ import annotations

from .core import Ctx


def log_axes(ax, xlabel: str, ylabel: str, title: str) -> None:
    """Log-log axes with their labels (both marked "(log)"), a title and a light grid."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel + " (log)")
    ax.set_ylabel(ylabel + " (log)")
    ax.set_title(title, fontsize=10)
    ax.grid(which="both", alpha=0.3)


def save_plot(ctx: Ctx, fig, name: str) -> None:
    """Writes `fig` as bench/`name` and frees it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(ctx.out / name, dpi=110)
    plt.close(fig)
