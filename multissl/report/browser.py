"""Check the report page in a real headless Chromium: it renders (a non-blank screenshot), it logs no
console error, and every ``<img>`` loads from disk.

``python -m multissl.report.browser report/index.html --screenshot shot.png`` (exit 1 on a failed
check, 3 when no Chromium is installed: ``apt-get install chromium`` on Debian). The page itself has no
script; the check loads a copy of it with a small probe script that records ``console.error``, page
errors, resource load failures and each image's state, then reads them back with ``--dump-dom``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars",
         "--disable-extensions", "--no-first-run", "--disable-dev-shm-usage"]
PROBE = """<script>(function(){var errs=[];window.__multisslErrors=errs;
var ce=console.error;console.error=function(){errs.push('console.error: '+Array.from(arguments).join(' '));
ce.apply(console,arguments)};window.addEventListener('error',function(e){var t=e.target||{};
errs.push(t.tagName?('failed to load '+(t.getAttribute('src')||t.getAttribute('href'))):('page error: '+e.message))},true);
window.addEventListener('load',function(){setTimeout(function(){var imgs=Array.from(document.images).map(function(i){
return [i.getAttribute('src'),i.complete&&i.naturalWidth>0]});var p=document.createElement('pre');
p.id='multissl-check';p.textContent=JSON.stringify({images:imgs,errors:errs});document.body.appendChild(p)},50)})})();
</script>"""


def find_chromium() -> str | None:
    """The Chromium executable (``MULTISSL_CHROMIUM`` first), or None."""
    env = os.environ.get("MULTISSL_CHROMIUM")
    if env and Path(env).exists():
        return env
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def _nonblank(png: Path) -> dict[str, float]:
    """Share of pixels that are not the background, and the pixel standard deviation."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(png).convert("L"), dtype=np.float32)
    background = np.median(a)
    return {"ink_fraction": float((np.abs(a - background) > 24).mean()), "pixel_std": float(a.std())}


def check_page(page: Path, screenshot: Path, width: int = 1300, height: int = 2000,
               chromium: str | None = None, timeout: float = 120) -> dict[str, Any]:
    """Render ``page`` headless; returns images (src, loaded), errors, the screenshot's ink and ``ok``."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found (apt-get install chromium, or set MULTISSL_CHROMIUM)")
    page = page.resolve()
    screenshot = screenshot.resolve()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    shot = subprocess.run([chromium, *FLAGS, f"--window-size={width},{height}", f"--screenshot={screenshot}",
                           page.as_uri()], capture_output=True, text=True, timeout=timeout, check=False)
    if not screenshot.exists():
        raise RuntimeError(f"Chromium wrote no screenshot (exit {shot.returncode}): {shot.stderr[-500:]}")
    probe = page.with_name(".browser-check.html")  # beside the page, so relative image paths resolve
    html = page.read_text(encoding="utf-8")
    probe.write_text(html.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    try:
        dom = subprocess.run([chromium, *FLAGS, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
                              "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=timeout,
                             check=False)
    finally:
        probe.unlink(missing_ok=True)
    m = re.search(r'<pre id="multissl-check">(.*?)</pre>', dom.stdout, re.DOTALL)
    if not m:
        raise RuntimeError(f"the probe did not report (exit {dom.returncode}): {dom.stderr[-500:]}")
    found = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                       .replace("&gt;", ">"))
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE" in line]
    ink = _nonblank(screenshot)
    images = [(src, bool(ok)) for src, ok in found["images"]]
    errors = list(found["errors"]) + [f"console: {line}" for line in console]
    ok = ink["ink_fraction"] > 0.01 and not errors and all(loaded for _, loaded in images)
    return {"screenshot": str(screenshot), "images": images, "errors": errors, **ink, "ok": ok}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m multissl.report.browser", description=__doc__.splitlines()[0])
    p.add_argument("page", type=Path, help="the report's index.html")
    p.add_argument("--screenshot", type=Path, default=None, help="PNG to write (default: beside the page)")
    p.add_argument("--width", type=int, default=1300)
    p.add_argument("--height", type=int, default=2000)
    args = p.parse_args(argv)
    if find_chromium() is None:
        print("no Chromium installed: apt-get install chromium (Debian), or set MULTISSL_CHROMIUM")
        return 3
    res = check_page(args.page, args.screenshot or args.page.with_name("screenshot.png"), args.width, args.height)
    bad = [src for src, loaded in res["images"] if not loaded]
    print(f"screenshot {res['screenshot']}: {res['ink_fraction']:.1%} of pixels drawn; "
          f"{len(res['images']) - len(bad)}/{len(res['images'])} images loaded; {len(res['errors'])} console errors")
    for line in res["errors"] + [f"image not loaded: {src}" for src in bad]:
        print("  " + line)
    print("browser check " + ("passed" if res["ok"] else "FAILED"))
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
