"""Acceptance 2: report.html opens in a real headless browser (Debian's chromium); tables, plots visible."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from quantdrop.report import write_report
from tests.report.paper import illustrative_proxies

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)
WIDTH, HEIGHT = 1280, 4000

# appended to a copy of the report: writes each image's decoded size and page position into the DOM
PROBE = """<script>window.addEventListener('load', () => {
  const out = [...document.images].map(i => {const r = i.getBoundingClientRect();
    return {w: i.naturalWidth, h: i.naturalHeight, done: i.complete, x: r.left + scrollX, y: r.top + scrollY,
            width: r.width, height: r.height, src: i.getAttribute('src').slice(0, 22)};});
  const pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);});</script>"""


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'profile'}",
        f"--window-size={WIDTH},{HEIGHT}",
        "--hide-scrollbars",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict:
    from tests.report.paper import paper_data

    tmp = tmp_path_factory.mktemp("browser")
    data = dataclasses.replace(paper_data(), proxies=illustrative_proxies())
    page = write_report(tmp / "report", data)
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium(tmp, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    shot = tmp / "shot.png"
    _chromium(tmp, f"--screenshot={shot}", page.as_uri())
    return {"page": page, "dom": dom.stdout, "shot": shot}


def test_dom_has_the_tables_and_embedded_images(rendered) -> None:
    dom = rendered["dom"]
    for table_id in ("recommendations", "table-1", "table-2", "quality-proxies-against-the-reference"):
        assert f'<table id="{table_id}">' in dom, table_id
    srcs = re.findall(r'<img [^>]*src="([^"]{0,30})', dom)
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "8x910B-64G" in dom and "DQ3_K_M" in dom
    for header in ("Device set", "Metric", "Benchmark", "Variant"):  # each table kept its header row
        assert f"<thead><tr><th>{header}</th>" in dom, header


def test_images_decode_in_the_browser(rendered) -> None:
    probe = json.loads(re.search(r'<pre id="probe">(.*?)</pre>', rendered["dom"], re.S).group(1))
    assert len(probe) == 2
    for img in probe:
        assert img["done"] and img["w"] > 300 and img["h"] > 200, img  # a broken image has no natural size
        assert img["width"] > 300 and img["height"] > 150


def test_screenshot_shows_tables_and_plots(rendered) -> None:
    import matplotlib.image

    px = matplotlib.image.imread(rendered["shot"])[..., :3]
    assert px.shape[:2] == (HEIGHT, WIDTH)
    ink = px.min(-1) < 0.85
    assert ink.mean() > 0.02, "the page is blank"
    probe = json.loads(re.search(r'<pre id="probe">(.*?)</pre>', rendered["dom"], re.S).group(1))
    for img in probe:  # inside each plot: drawn lines and coloured marks, not a blank or broken box
        y0, y1 = int(img["y"]), min(HEIGHT, int(img["y"] + img["height"]))
        x0, x1 = int(img["x"]), int(img["x"] + img["width"])
        region = px[y0:y1, x0:x1]
        assert region.size, img
        coloured = (region.max(-1) - region.min(-1)) > 0.3
        assert (region.min(-1) < 0.85).mean() > 0.03 and coloured.sum() > 500, img
    # the tables above the first plot: dark text in many rows
    top = px[: int(min(i["y"] for i in probe))]
    assert (np.mean(top.min(-1) < 0.5, axis=1) > 0.005).sum() > 100
