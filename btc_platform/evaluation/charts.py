"""The leaderboard's chart: test equity curves of every evaluated model version and of the baselines."""

from __future__ import annotations

import io

import pandas as pd


def equity_chart(evaluations: list[dict], llm_rows: pd.DataFrame | None = None,
                 split: str = "test") -> tuple[bytes, bytes]:
    """(PNG, SVG) of the equity curves on `split`, net of costs (baselines dashed), and beside them the LLMs'
    mean realized reward per answer against their baselines when there are LLM rows."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render to bytes
    import matplotlib.pyplot as plt

    with_llm = llm_rows is not None and len(llm_rows) > 0
    fig, axes = plt.subplots(1, 2 if with_llm else 1, figsize=(14 if with_llm else 9, 4.5), dpi=100,
                             gridspec_kw={"width_ratios": [3, 2]} if with_llm else None)
    ax = axes[0] if with_llm else axes
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
    if with_llm:
        bars = axes[1]
        values = llm_rows[f"{split}_mean_reward"].astype(float).fillna(0.0)
        colors = ["tab:blue" if k == "llm" else "tab:grey" for k in llm_rows["kind"]]
        bars.barh(llm_rows["entry"].astype(str), values, color=colors)
        bars.axvline(0.0, color="black", linewidth=0.5)
        bars.set_title(f"LLMs: mean realized reward on {split}")
        bars.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    png, svg = io.BytesIO(), io.BytesIO()
    fig.savefig(png, format="png")
    fig.savefig(svg, format="svg")
    plt.close(fig)
    return png.getvalue(), svg.getvalue()
