"""Build the demo's report and look at it in a real browser: headless Chromium takes a full-page screenshot.

Runs ``tavrnn demo`` (or reuses an existing demo analyzer), times ``write_report`` on it, then screenshots
``index.html`` with ``chromium --headless``. Chromium comes from Debian (``apt-get install -y chromium``).

Usage::

    python benchmarks/screenshot_report.py [--analyzer tavrnn_demo/analyzer] [--output report_screenshot.png]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("No Chromium found: install it with `apt-get install -y chromium` (Debian) and rerun.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--analyzer", type=Path, default=None, help="a demo analyzer folder to reuse")
    parser.add_argument("--output", type=Path, default=Path("report_screenshot.png"), help="screenshot (PNG)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=4000)
    args = parser.parse_args(argv)

    from spikeinterface_tavrnn.analyzer import load_sorting_analyzer
    from spikeinterface_tavrnn.report import write_report

    work = Path(tempfile.mkdtemp(prefix="tavrnn_screenshot_"))
    analyzer_folder = args.analyzer
    if analyzer_folder is None:
        from spikeinterface_tavrnn.cli import main as tavrnn

        tavrnn(["demo", "--output", str(work / "demo"), "--quiet"])
        analyzer_folder = work / "demo" / "analyzer"
    analyzer = load_sorting_analyzer(analyzer_folder)
    start = time.perf_counter()
    index = write_report(
        analyzer,
        work / "report",
        title="TAVRNN demo: rat CA1 on a linear track, one window per visit to a track segment",
    )
    print(f"write_report: {time.perf_counter() - start:.1f} s -> {index}")
    subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={args.output.resolve()}",
            f"--window-size={args.width},{args.height}",
            index.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    print(f"screenshot: {args.output.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
