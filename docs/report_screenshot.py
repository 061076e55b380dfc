"""Screenshot of an experiment's report page for the docs (docs/images/report_page.png).

    python docs/report_screenshot.py demo_outputs/demo/report.html docs/images/report_page.png

Opens the page in Debian's headless Chromium (Playwright), loads every thumbnail, reviews
two gallery images (one relabelled, one removed), hovers the curve, and stitches the summary,
the curve, the top of the gallery and the review bar into one 900 px wide, 256-colour PNG.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
WIDTH, OUT_WIDTH, GALLERY_HEIGHT = 1200, 900, 760


def capture(page_path: Path, shot: Path) -> dict:
    """A full-height screenshot of the page in ``shot``; the boxes of its parts."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": 4200})
        page.goto(page_path.resolve().as_uri())
        page.evaluate("""async () => { for (const img of document.querySelectorAll('.tile img')) {
            img.loading = 'eager'; try { await img.decode(); } catch (e) {} } }""")
        tiles = page.locator("#gallery-errors .tile")
        tiles.nth(1).click()
        tiles.nth(2).click()
        tiles.nth(2).click()
        page.locator("#pr-curve").hover(position={"x": 300, "y": 60})
        page.screenshot(path=str(shot))
        boxes = {name: page.locator(f"#{name}").bounding_box()
                 for name in ("curve", "gallery", "reviewbar")}
        browser.close()
    return boxes


def main(page_path: str, out: str) -> None:
    shot = Path(out).with_suffix(".full.png")
    boxes = capture(Path(page_path), shot)
    full = Image.open(shot).convert("RGB")
    shot.unlink()
    curve, gallery, bar = boxes["curve"], boxes["gallery"], boxes["reviewbar"]
    parts = [full.crop((0, 0, WIDTH, int(curve["y"] + curve["height"]))),
             full.crop((0, int(gallery["y"]) - 10, WIDTH, int(gallery["y"]) + GALLERY_HEIGHT)),
             full.crop((0, int(bar["y"]), WIDTH, int(bar["y"] + bar["height"])))]
    sheet = Image.new("RGB", (WIDTH, sum(p.height for p in parts)), "white")
    y = 0
    for part in parts:
        sheet.paste(part, (0, y))
        y += part.height
    sheet = sheet.resize((OUT_WIDTH, round(sheet.height * OUT_WIDTH / WIDTH)),
                         Image.Resampling.LANCZOS)
    sheet.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(out, optimize=True)
    print(f"{out}: {sheet.width}x{sheet.height}, {Path(out).stat().st_size // 1024} KB")


if __name__ == "__main__":
    main(*sys.argv[1:3])
