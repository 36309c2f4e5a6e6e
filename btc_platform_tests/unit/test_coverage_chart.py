"""Coverage matrix (day x dataset) and its PNG and SVG heatmaps, encoded without a plotting library."""

from __future__ import annotations

import io
import struct
import xml.etree.ElementTree as ET
import zlib

import numpy as np
import pytest

from btc_platform.monitoring import (
    coverage_matrix,
    write_coverage_png,
    write_coverage_svg,
)
from btc_platform.monitoring.coverage_chart import NO_DATA, colors

SVG = "{http://www.w3.org/2000/svg}"


def summary(day: str, symbol: str, cov: float, dataset: str = "coinbase_candles_1m", expected: int = 1440) -> dict:
    return {"dataset": dataset, "partition": f"{day}|{symbol}", "start": f"{day}T00:00:00+00:00",
            "expected_bars": expected, "coverage": cov, "coverage_adjusted": cov}


SUMMARIES = [
    summary("2024-01-01", "BTC-USD", 1.0),
    summary("2024-01-01", "ETH-USD", 0.5),
    summary("2024-01-02", "BTC-USD", 0.0),
    # 2024-01-03: no summary at all; 2024-01-04: BTC only
    summary("2024-01-04", "BTC-USD", 0.95),
    {"kind": "series", "dataset": "fred", "partition": "CPIAUCSL", "stale": False},   # not a coverage
]


def read_png(data: bytes) -> tuple[int, int, np.ndarray]:
    """Decode the PNGs written here (8-bit RGB, filter 0), checking every chunk's CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF, tag
        chunks.append((tag, body))
        pos += 12 + n
    assert [t for t, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, ctype, interlace) == (8, 2, 0)
    raw = np.frombuffer(zlib.decompress(chunks[1][1]), dtype=np.uint8).reshape(h, 1 + 3 * w)
    assert (raw[:, 0] == 0).all()
    return w, h, raw[:, 1:].reshape(h, w, 3)


def test_matrix_is_day_by_dataset_with_grey_days():
    m = coverage_matrix(SUMMARIES)
    assert list(m.columns) == ["coinbase_candles_1m BTC-USD", "coinbase_candles_1m ETH-USD"]
    assert list(m.index.strftime("%Y-%m-%d")) == ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]
    assert m.index.name == "day"
    assert m.loc["2024-01-01"].tolist() == [1.0, 0.5]
    assert m.loc["2024-01-03"].isna().all() and np.isnan(m.loc["2024-01-02", "coinbase_candles_1m ETH-USD"])
    assert m.loc["2024-01-04", "coinbase_candles_1m BTC-USD"] == 0.95


def test_matrix_weights_repeated_cells_and_reads_older_summaries():
    old = {"dataset": "d", "partition": "2024-01-01", "expected_bars": 30, "coverage": 1.0}  # no start, no adjusted
    m = coverage_matrix([old, {**old, "expected_bars": 10, "coverage": 0.0}])
    assert m.shape == (1, 1) and m.iloc[0, 0] == pytest.approx(0.75)
    raw = coverage_matrix([{**summary("2024-01-01", "BTC-USD", 0.5), "coverage_adjusted": 0.9}], value="coverage")
    assert raw.iloc[0, 0] == 0.5
    assert coverage_matrix([]).empty


def test_colours_run_red_to_green_with_grey_for_no_data():
    c = colors(np.array([0.0, 0.5, 1.0, np.nan, 1.7, -1.0]))
    assert c[0].tolist() == [215, 48, 39] and c[2].tolist() == [26, 152, 80]
    assert c[1].tolist() == [254, 224, 139] and c[3].tolist() == list(NO_DATA)
    assert c[4].tolist() == c[2].tolist() and c[5].tolist() == c[0].tolist()   # clipped
    ramp = colors(np.linspace(0, 1, 11))
    assert (np.diff(ramp[:, 0].astype(int))[5:] < 0).all() and (np.diff(ramp[:, 1].astype(int))[:5] > 0).all()


@pytest.mark.parametrize("cell", [12, 3])
def test_png_is_valid_and_one_block_per_cell(tmp_path, cell):
    m = coverage_matrix(SUMMARIES)
    data = write_coverage_png(m, tmp_path / "coverage.png", cell=cell)
    assert (tmp_path / "coverage.png").read_bytes() == data
    w, h, img = read_png(data)
    assert (w, h) == (4 * cell, 2 * cell)                   # days across, datasets down

    def centre(day: int, row: int) -> list[int]:
        return img[row * cell + cell // 2 - (cell > 5), day * cell + cell // 2 - (cell > 5)].tolist()

    assert centre(0, 0) == colors(np.array([1.0]))[0].tolist()      # BTC 2024-01-01: green
    assert centre(1, 0) == colors(np.array([0.0]))[0].tolist()      # BTC 2024-01-02: red
    assert centre(0, 1) == colors(np.array([0.5]))[0].tolist()      # ETH 2024-01-01: yellow
    assert centre(2, 0) == list(NO_DATA) and centre(2, 1) == list(NO_DATA)
    if cell >= 6:
        assert img[cell - 1, 0].tolist() == [255, 255, 255]         # separator line

    buf = io.BytesIO()
    assert write_coverage_png(m, buf, cell=cell) == data and buf.getvalue() == data


def test_empty_matrix_gives_one_grey_cell():
    w, h, img = read_png(write_coverage_png(coverage_matrix([]), io.BytesIO(), cell=4))
    assert (w, h) == (4, 4) and (img.reshape(-1, 3) == NO_DATA).all()


def test_svg_parses_with_one_rect_per_cell_and_labels(tmp_path):
    m = coverage_matrix(SUMMARIES)
    text = write_coverage_svg(m, tmp_path / "coverage.svg")
    root = ET.parse(tmp_path / "coverage.svg").getroot()
    assert root.tag == f"{SVG}svg" and (tmp_path / "coverage.svg").read_text() == text
    cells = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "cell"]
    assert len(cells) == 4 * 2
    tips = [r.find(f"{SVG}title").text for r in cells]
    assert "coinbase_candles_1m ETH-USD 2024-01-01: 50.00%" in tips
    assert "coinbase_candles_1m BTC-USD 2024-01-03: no data" in tips
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "coinbase_candles_1m BTC-USD" in labels and "2024-01-01" in labels
    fills = {r.find(f"{SVG}title").text: r.get("fill") for r in cells}
    assert fills["coinbase_candles_1m BTC-USD 2024-01-02: 0.00%"] == "rgb(215,48,39)"

    buf = io.StringIO()
    write_coverage_svg(m, buf)
    assert buf.getvalue() == text
    escaped = coverage_matrix([summary("2024-01-01", "A<B&C", 1.0)])
    ET.fromstring(write_coverage_svg(escaped, io.BytesIO()))   # labels are escaped
