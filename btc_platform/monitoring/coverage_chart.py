"""Coverage chart: a day x dataset matrix of coverage, drawn as a PNG heatmap and as a labelled SVG.

No plotting library: the PNG is encoded here (8-bit RGB, zlib + CRC chunks), the SVG is text. Time
runs left to right (one column per day), one row per dataset; red is 0, yellow 0.5, green 1, grey a
day without a summary. The PNG has no text (no font library); the SVG has the labels and a tooltip
per cell, so link the SVG where people read it and the PNG where only images render.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from pathlib import Path
from typing import IO, Iterable
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd

from btc_platform.storage import open_url

NO_DATA = (200, 200, 200)
# Colour stops at coverage 0, 0.5 and 1 (ColorBrewer RdYlGn ends and middle).
_STOPS = np.array([[215, 48, 39], [254, 224, 139], [26, 152, 80]], dtype="float64")
_SEPARATOR = (255, 255, 255)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def coverage_matrix(summaries: Iterable[dict], *, value: str = "coverage_adjusted") -> pd.DataFrame:
    """Day x dataset coverage from quality summaries (`summarize_candles` output).

    The day is the date of the summary's `start` (else the date part of its partition key); the
    column is its `dataset`, followed by the partition key's other parts ("coinbase_candles_1m
    BTC-USD" for "2024-01-02|BTC-USD"). The value is `value` (falling back to `coverage` for
    summaries written before `coverage_adjusted` existed); several summaries of one cell are averaged,
    weighted by their expected bars. Summaries without coverage (series summaries) are left out. The
    index is every day from the first to the last (tz-naive, named "day"), NaN where there is no
    summary; columns are sorted.
    """
    rows = []
    for s in summaries:
        cov = s.get(value, s.get("coverage"))
        if cov is None or "expected_bars" not in s:
            continue
        parts = str(s.get("partition", "")).split("|")
        day_parts = [p for p in parts if _DAY.match(p)]
        if s.get("start"):
            day = pd.Timestamp(s["start"])
            day = (day.tz_convert("UTC").tz_localize(None) if day.tzinfo else day).normalize()
        elif day_parts:
            day = pd.Timestamp(day_parts[0])
        else:
            continue
        label = " ".join([str(s.get("dataset", "")), *[p for p in parts if p and p not in day_parts]]).strip()
        rows.append((day, label, float(cov), max(int(s.get("expected_bars") or 0), 1)))
    if not rows:
        return pd.DataFrame(index=pd.DatetimeIndex([], name="day"), columns=pd.Index([], name="dataset"),
                        dtype="float64")
    frame = pd.DataFrame(rows, columns=["day", "dataset", "cov", "w"])
    frame["cw"] = frame["cov"] * frame["w"]
    sums = frame.groupby(["day", "dataset"])[["cw", "w"]].sum()
    matrix = (sums["cw"] / sums["w"]).unstack("dataset").sort_index(axis=1)
    days = pd.date_range(matrix.index.min(), matrix.index.max(), freq="D", name="day")
    return matrix.reindex(days).rename_axis(index="day", columns="dataset")


def colors(values: np.ndarray) -> np.ndarray:
    """RGB uint8 for coverage values: red 0 -> yellow 0.5 -> green 1 (clipped), grey for NaN."""
    v = np.asarray(values, dtype="float64")
    x = np.clip(np.nan_to_num(v, nan=0.0), 0.0, 1.0) * 2
    lo = np.minimum(x.astype(int), 1)
    f = (x - lo)[..., None]
    rgb = _STOPS[lo] * (1 - f) + _STOPS[lo + 1] * f
    rgb[np.isnan(v)] = NO_DATA
    return np.rint(rgb).astype(np.uint8)


def _grid(matrix: pd.DataFrame) -> np.ndarray:
    """Datasets as rows, days as columns (time runs left to right); at least one (grey) cell."""
    grid = matrix.to_numpy(dtype="float64").T
    return grid if grid.size else np.full((1, 1), np.nan)


def png_bytes(rgb: np.ndarray) -> bytes:
    """A PNG (8-bit truecolour, no interlace) of an (height, width, 3) uint8 array."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), rgb.reshape(h, w * 3)], axis=1)  # filter 0

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
            + chunk(b"IEND", b""))


def _write(data: bytes, target) -> None:
    if hasattr(target, "write"):
        target.write(data)
    elif hasattr(target, "open"):  # pathlib.Path, UPath
        with target.open("wb") as f:
            f.write(data)
    elif "://" in str(target):  # gs://...: Path() would make a local folder named "gs:"
        fs, path = open_url(str(target))
        fs.pipe_file(path, data)
    else:
        Path(target).write_bytes(data)


def write_coverage_png(matrix: pd.DataFrame, path_or_fileobj: str | Path | IO[bytes], *, cell: int = 12) -> bytes:
    """Heatmap PNG of a `coverage_matrix`: width = days x `cell`, height = datasets x `cell` pixels
    (an empty matrix: one grey cell). From 6-pixel cells up, each cell's last row and column are white
    separators. Writes to a path or binary file object and returns the bytes."""
    if cell < 1:
        raise ValueError("cell must be >= 1 pixel")
    rgb = colors(_grid(matrix))
    img = np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1)
    if cell >= 6:
        img[cell - 1::cell, :, :] = _SEPARATOR
        img[:, cell - 1::cell, :] = _SEPARATOR
    data = png_bytes(img)
    _write(data, path_or_fileobj)
    return data


def coverage_svg(matrix: pd.DataFrame, *, cell: int = 12, title: str = "Coverage by day and dataset") -> str:
    """SVG text of the heatmap: one `<rect class="cell">` per day x dataset (with a tooltip), dataset
    labels on the left, the first day and each month's first day labelled on top, a legend below."""
    grid = matrix.to_numpy(dtype="float64").T
    datasets = [str(c) for c in matrix.columns]
    days = [pd.Timestamp(d) for d in matrix.index]
    left = 12 + 7 * max((len(d) for d in datasets), default=0)
    top = 90
    width = left + max(len(days), 1) * cell + 20
    height = top + max(len(datasets), 1) * cell + 60
    font = 'font-family="monospace" font-size="11"'
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
        '<defs><linearGradient id="cov">'
        + "".join(f'<stop offset="{o}" stop-color="rgb{tuple(int(c) for c in s)}"/>'
                  for o, s in zip(("0", "0.5", "1"), _STOPS))
        + "</linearGradient></defs>",
        f'<text x="4" y="14" {font} font-weight="bold">{escape(title)}</text>',
    ]
    for j, name in enumerate(datasets):
        y = top + j * cell + cell / 2 + 4
        out.append(f'<text x="{left - 6}" y="{y:g}" {font} text-anchor="end">{escape(name)}</text>')
    for i, day in enumerate(days):
        if i == 0 or day.day == 1:
            x = left + i * cell + cell / 2 + 4
            out.append(f'<text x="{x:g}" y="{top - 4}" {font} transform="rotate(-90 {x:g} {top - 4})">'
                       f"{day:%Y-%m-%d}</text>")
    fill = colors(grid)
    for j, name in enumerate(datasets):
        for i, day in enumerate(days):
            v = grid[j, i]
            tip = f"{name} {day:%Y-%m-%d}: " + ("no data" if np.isnan(v) else f"{v:.2%}")
            r, g, b = (int(c) for c in fill[j, i])
            out.append(f'<rect class="cell" x="{left + i * cell}" y="{top + j * cell}" width="{cell}" '
                       f'height="{cell}" fill="rgb({r},{g},{b})" stroke="white" stroke-width="0.5">'
                       f"<title>{escape(tip)}</title></rect>")
    ly = top + max(len(datasets), 1) * cell + 20
    grey = "rgb({},{},{})".format(*NO_DATA)
    out += [
        f'<text x="{left}" y="{ly - 4}" {font}>0%</text>',
        f'<rect class="legend" x="{left + 24}" y="{ly - 14}" width="120" height="12" fill="url(#cov)"/>',
        f'<text x="{left + 150}" y="{ly - 4}" {font}>100%</text>',
        f'<rect class="legend" x="{left + 190}" y="{ly - 14}" width="12" height="12" fill="{grey}"/>',
        f'<text x="{left + 208}" y="{ly - 4}" {font}>no data</text>',
        "</svg>",
    ]
    return "\n".join(out) + "\n"


def write_coverage_svg(matrix: pd.DataFrame, path_or_fileobj: str | Path | IO, *, cell: int = 12,
                       title: str = "Coverage by day and dataset") -> str:
    """Write `coverage_svg` (UTF-8) to a path or file object (text or binary); returns the text."""
    text = coverage_svg(matrix, cell=cell, title=title)
    if hasattr(path_or_fileobj, "write") and isinstance(path_or_fileobj, io.TextIOBase):
        path_or_fileobj.write(text)
    else:
        _write(text.encode("utf-8"), path_or_fileobj)
    return text
