"""The compliance matrix as a real browser renders it: uvicorn on 127.0.0.1 in a thread, headless
Chromium (the Debian package) driven by its command line — the DOM it built, and a screenshot
(kept under artifacts/) whose pixels show the status colours."""
from __future__ import annotations

import socket
import struct
import subprocess
import threading
import time
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from adapters.api import create_app
from adapters.bootstrap import bootstrap
from adapters.facts_file import read_facts_file
from adapters.plans import bundled_path, import_plan
from adapters.tokens import create_token

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
AS_OF = "2024-12-31"
# The cell colours of adapters/templates/dashboard.css.
COLOURS = {"met": (0x7F, 0xD1, 0x8B), "met-late": (0x5F, 0xC4, 0xBD), "open": (0xD5, 0xD8, 0xDC),
           "overdue": (0xFF, 0xBF, 0x47), "breached": (0xE8, 0x61, 0x5A)}
FACTS = """\
units:
  - {id: sh-jlc, name: 市局计量处, kind: regulator}
  - {id: sh-zjy, name: 上海市质量监督检验技术研究院, kind: institute, lead_lab_since: 2023-01-01}
  - {id: sh-pd-jls, name: 浦东新区计量所, kind: district-institute, lead_lab_since: 2020-01-01}
people:
  - {id: p-001, name: 王芳, unit: sh-pd-jls, duties: [mandatory-verification], since: 2022-05-01}
  - {id: p-002, name: 赵磊, unit: sh-zjy, duties: [mandatory-verification], since: 2021-09-01}
centers:
  - {id: c-icv, name: 上海市智能网联汽车产业计量测试中心, host: sh-zjy}
events:
  - {id: ev-t1, type: training-recorded, date: 2023-03-02, person: p-001, hours: 8, off_job: true}
  - {type: training-recorded, date: 2023-05-10, person: p-002, hours: 16, off_job: true}
  - {type: training-recorded, date: 2024-04-10, person: p-002, hours: 16, off_job: true}
  - {type: comparison-organized, date: 2023-06-10, unit: sh-zjy, subject: 压力表}
  - {type: center-approved, date: 2023-06-01, center: c-icv, construction_years: 2}
  - {id: ev-me1, type: center-major-event, date: 2023-09-28, center: c-icv, summary: 主任变更}
  - {type: center-major-event-notified, date: 2023-10-20, center: c-icv, refers_to: ev-me1}
  - {type: center-annual-report-filed, date: 2023-11-29, center: c-icv, year: 2023}
  - {type: exchange-activity-held, date: 2023-08-01, center: c-icv}
"""

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed: apt-get install chromium")


class MatrixCells(HTMLParser):
    """The cells of table#compliance-matrix and the document's language."""

    def __init__(self) -> None:
        super().__init__()
        self.lang = None
        self.depth = 0
        self.cells: list[dict] = []
        self.rows: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "table":
            if self.depth or a.get("id") == "compliance-matrix":
                self.depth += 1
        elif self.depth and tag == "tr" and a.get("data-unit"):
            self.rows.append(a["data-unit"])
        elif self.depth and tag == "td":
            self.cells.append(a)

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def served(tmp_path):
    import uvicorn
    app = bootstrap(store_url=f"sqlite:///{tmp_path}/t.db", engine="reference")
    facts = tmp_path / "facts.yaml"
    facts.write_text(FACTS, encoding="utf-8")
    app.record.load(read_facts_file(facts))
    import_plan(app.record, bundled_path("shanghai-2023"))
    token = create_token(app.store, "division", None)
    sock = free_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(app), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        app.close()


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """A minimal decoder for the 8-bit RGB/RGBA non-interlaced PNGs Chromium writes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = previous[i]
            corner = previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, bpp, rows


def colour_counts(png: bytes, tolerance: int = 6) -> dict[str, int]:
    width, bpp, rows = png_pixels(png)
    counts = dict.fromkeys(COLOURS, 0)
    for line in rows:
        for x in range(0, width * bpp, bpp):
            r, g, b = line[x], line[x + 1], line[x + 2]
            for status, (cr, cg, cb) in COLOURS.items():
                if abs(r - cr) <= tolerance and abs(g - cg) <= tolerance and abs(b - cb) <= tolerance:
                    counts[status] += 1
    return counts


def test_the_compliance_matrix_renders_in_headless_chromium(served, tmp_path):
    base, token = served
    url = f"{base}/dashboard?as_of={AS_OF}&token={token}"

    dom = chromium(tmp_path, "--dump-dom", url).stdout
    parsed = MatrixCells()
    parsed.feed(dom)
    assert parsed.lang == "zh-CN"
    assert 'id="compliance-matrix"' in dom, dom[:2000]
    assert {"sh-jlc", "sh-zjy", "sh-pd-jls"} <= set(parsed.rows)
    coloured = [c for c in parsed.cells if c.get("data-status")]
    statuses = {c["data-status"] for c in coloured}
    assert {"met", "met-late", "open", "overdue", "breached"} <= statuses, statuses
    for cell in coloured:
        assert f"s-{cell['data-status']}" in cell["class"].split()
    [pudong_training] = [c for c in coloured if c["data-unit"] == "sh-pd-jls" and c["data-rule"] == "training-hours"]
    assert pudong_training["data-status"] == "breached"  # 8 of 16 hours in 2023

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard-matrix.png"
    shot.unlink(missing_ok=True)
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", url)
    assert shot.exists() and shot.stat().st_size > 10_000
    counts = colour_counts(shot.read_bytes())
    for status in statuses:
        assert counts[status] > 200, f"no {status} cell visible in {shot}: {counts}"


def test_without_a_token_the_browser_gets_the_login_page(served, tmp_path):
    base, _ = served
    dom = chromium(tmp_path, "--dump-dom", f"{base}/dashboard").stdout
    assert 'name="token"' in dom and "compliance-matrix" not in dom

