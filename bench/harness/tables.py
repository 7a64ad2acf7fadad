"""Number formats and markdown tables."""

from __future__ import annotations

from .core import Rec


def si(v: float) -> str:
    """3 significant digits with a k/M/G suffix: 1.23M."""
    v = float(f"{v:.3g}")
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suf}"
    return f"{v:.3g}"


def num(v: float, unit: str = "") -> str:
    if unit in ("ops/s", "msgs/s", "bytes/s"):
        return si(v)
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def dur(v: float, unit: str) -> str:
    """A duration given in ns or us, in the unit that reads best."""
    ns = v * {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}.get(unit, 1.0)
    for div, suf in ((1e9, "s"), (1e6, "ms"), (1e3, "µs")):
        if ns >= div:
            return f"{num(ns / div)} {suf}"
    return f"{num(ns)} ns"


def ratio_str(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:,.0f}x"
    if x >= 10:
        return f"{x:.1f}x"
    return f"{x:.2f}x"


def spread(r: Rec) -> str:
    return f"{num(min(r.runs), r.unit)}–{num(max(r.runs), r.unit)}"


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def workload_str(params: dict) -> str:
    if "n" in params:
        n, t = params["n"], params.get("topics", 1)
        if t == 1:
            return f"hot room: {si(n)} conns in 1 topic"
        return f"{si(n)} conns / {si(t)} topics"
    return ", ".join(f"{k}={v}" for k, v in params.items())


def quantile(xs: list[float], q: float) -> float:
    """Nearest-rank quantile (q in 0..1)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(-(-q * len(xs) // 1)) - 1))]


def ms_str(v: float) -> str:
    return f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"
