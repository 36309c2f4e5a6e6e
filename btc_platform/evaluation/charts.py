"""The leaderboard's chart: test equity curves of every evaluated model version and of the baselines."""

from __future__ import annotations

import io

import pandas as pd


def equity_chart(evaluations: list[dict], split: str = "test") -> tuple[bytes, bytes]:
    """(PNG, SVG) of the equity curves on `split`, net of costs; baselines dashed."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to bytes
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    drawn = set()
    for e in evaluations:
        curves = e["curves"][split]
        for name, points in curves.items():
            label = f"{e['model']} ({e['config_hash']})" if name == "model" else name
            if name != "model" and name in drawn:
                continue  # one line per baseline
            drawn.add(name)
            series = pd.Series([v for _, v in points], index=pd.to_datetime([t for t, _ in points]))
            ax.plot(series.index, series.to_numpy(), label=label, linestyle="-" if name == "model" else "--",
                    linewidth=1.4 if name == "model" else 1.0)
    ax.axhline(1.0, color="grey", linewidth=0.5)
    ax.set_title(f"Equity on {split}, net of fees and slippage")
    ax.set_ylabel("equity (start = 1)")
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    png, svg = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png")
    fig.savefig(svg, format="svg")
    plt.close(fig)
    return png.getvalue(), svg.getvalue()
