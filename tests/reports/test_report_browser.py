"""The overview and a lagging branch's page in headless Chromium: they render, and docs/ keeps the screenshots."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reports.campaign import Built

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"headless Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)",
    ),
]


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int
    rows: list[bytes]

    def pixels(self, step: int = 1) -> list[tuple[int, ...]]:
        """Every `step`-th pixel of every `step`-th row, as RGB(A) tuples."""
        c = self.channels
        return [
            tuple(row[x * c : x * c + c]) for row in self.rows[::step] for x in range(0, self.width, step)
        ]


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def decode_png(data: bytes) -> Image:
    """An 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes), with the stdlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
    width, height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for x in range(channels, stride):
                line[x] = (line[x] + line[x - channels]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for x in range(stride):
                left = line[x - channels] if x >= channels else 0
                line[x] = (line[x] + (left + previous[x]) // 2) & 0xFF
        elif kind == 4:
            for x in range(stride):
                left = line[x - channels] if x >= channels else 0
                corner = previous[x - channels] if x >= channels else 0
                line[x] = (line[x] + _paeth(left, previous[x], corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return Image(width, height, channels, rows)


def screenshot(page: Path, png: Path, profile: Path) -> Image:
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=1400,900", "--hide-scrollbars",
        f"--screenshot={png}", page.resolve().as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert png.exists(), f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    return decode_png(png.read_bytes())


def assert_not_blank(image: Image) -> None:
    assert (image.width, image.height) == (1400, 900)
    sample = image.pixels(step=3)
    colours = {p[:3] for p in sample}
    inked = sum(1 for p in sample if min(p[:3]) < 235) / len(sample)
    assert len(colours) > 200, f"only {len(colours)} colours: a blank or unstyled page"
    assert inked > 0.05, f"only {inked:.1%} of the page is not white"
    # The masthead's red band is there: the inline stylesheet was applied.
    top = image.pixels(step=7)[: image.width // 7 * 6]
    assert any(r > 140 and g < 60 and b < 80 for r, g, b, *_ in top)


def cjk_fonts() -> bool:
    """Whether fontconfig knows a font for Chinese (e.g. fonts-noto-cjk), so the screenshots show the text."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    found = subprocess.run([fc_list, ":lang=zh", "family"], capture_output=True, text=True, check=False)
    return found.returncode == 0 and bool(found.stdout.strip())


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chromium-profile")


@pytest.mark.parametrize(
    ("page", "keep_as"),
    [("index.html", "report-index.png"), ("branch", "report-branch.png")],
)
def test_pages_render_in_chromium(built: Built, profile: Path, tmp_path: Path, page: str, keep_as: str) -> None:
    if page == "branch":
        # The branch that lags: its page shows why.
        (late,) = built.shortfalls["late_branches"]
        page = f"branch-{late}.html"
    png = tmp_path / keep_as
    assert_not_blank(screenshot(built.study_dir / page, png, profile))
    if not cjk_fonts() or os.environ.get("CAMPAIGN_KEEP_SCREENSHOTS") != "1":
        # The docs' pictures are renewed only when asked for, and never without a CJK font (every Chinese character
        # would be a box): a test run leaves the checkout as it found it.
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / keep_as
    if not target.exists() or target.read_bytes() != png.read_bytes():
        shutil.copyfile(png, target)
