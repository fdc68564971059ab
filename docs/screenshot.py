"""A screenshot of an HTML report, as the render test takes it: headless Chromium, 1300 px wide.

    python docs/screenshot.py demo-output/report-2025-09-30.html docs/report-demo.png [--height 1700]

The top `--height` pixels of the page, stored with a 256-colour palette to keep the
PNG small enough for the repository.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

WIDTH = 1300


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--height", type=int, default=1700)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as scratch:
        shot = Path(scratch) / "shot.png"
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                f"--user-data-dir={scratch}/profile",
                f"--window-size={WIDTH},{args.height}",
                f"--screenshot={shot}",
                args.report.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
        Image.open(shot).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(
            args.png, optimize=True
        )
    print(f"{args.png}: {args.png.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
