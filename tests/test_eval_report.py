"""The report: self-contained HTML that loads its plots and crops in headless Chromium."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from gan_compress.evaluation import anchors, clips, codecs, ffmpeg, report, sweep

CARPHONE = clips.data_dir() / "video" / "eval" / "carphone_qcif_60f.mkv"
pytestmark = pytest.mark.skipif(not CARPHONE.exists(), reason=f"shared data not found: {CARPHONE}")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def _chromium() -> str | None:
    for name in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    """A small sweep: two x264 anchors ladders and x265 posing as the test codec, on a crop."""
    tmp = tmp_path_factory.mktemp("report")
    clip = tmp / "tiny_128x96.y4m"
    ffmpeg.run([ffmpeg.ffmpeg_exe(), "-v", "error", "-y", "-i", str(CARPHONE), "-vf",
                "crop=128:96:24:24", "-frames:v", "5", "-f", "yuv4mpegpipe", str(clip)])
    fake = codecs.FfmpegCodec(anchors.with_ladder(anchors.ANCHORS["x265_ld"], (22, 28, 34)),
                              name="fake_codec", label="x265 posing as the test codec")
    config = sweep.SweepConfig(
        report_dir=tmp / "report", clips=(clip,), metrics=("psnr", "vmaf"),
        anchors=(anchors.with_ladder(anchors.ANCHORS["x264_ld"], (22, 28, 34, 40)),),
    )
    results = sweep.run_sweep(config, [fake], progress=False, log=lambda s: None)
    report.write_report(config.report_dir, results)
    return config.report_dir


def _run_chromium(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                           "--virtual-time-budget=15000", *args],
                          capture_output=True, text=True, timeout=180)


def test_report_files_are_self_contained(report_dir):
    page = (report_dir / "index.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", page), "no network references"
    for src in re.findall(r"""src=['"]([^'"]+)['"]""", page):
        assert (report_dir / src).exists(), src
    md = (report_dir / "report.md").read_text()
    assert "fake_codec vs each anchor" in md and "PSNR-Y (dB)" in md
    assert list((report_dir / "plots").glob("*.png"))


def test_html_report_shows_plots_and_crops_in_headless_chromium(report_dir, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium); "
                    "skipping the headless-browser check of index.html")
    url = (report_dir / "index.html").resolve().as_uri()
    dom = _run_chromium(exe, tmp_path / "profile1", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stdout[:500]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert attrs.get("images-broken") == "0", attrs
    assert int(attrs["plots-loaded"]) >= 2, attrs  # per-clip plots of the selected metrics
    assert int(attrs["crops-loaded"]) == 3, attrs  # original, fake_codec, x264_ld

    shot = tmp_path / "shot.png"
    res = _run_chromium(exe, tmp_path / "profile2", "--window-size=1200,2400",
                        f"--screenshot={shot}", url)
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500, "screenshot looks blank"


def test_report_shows_flicker_and_a_per_frame_psnr_plot(report_dir):
    results = json.loads((report_dir / "results.json").read_text())
    row = next(r for r in results["rows"] if r["codec"] == "fake_codec")
    assert len(row["psnr_y_frames"]) == row["frames"] == 5
    assert 0.0 < row["tmad_ratio"] < 3.0
    md = (report_dir / "report.md").read_text()
    assert "## Temporal behaviour" in md and "| fake_codec |" in md
    plot = report_dir / "plots" / "tiny_128x96__frames.png"
    assert plot.stat().st_size > 5000
    assert "plots/tiny_128x96__frames.png" in (report_dir / "index.html").read_text()
