"""Image sweep (Kodak style): RGB metrics of ffmpeg still-image codecs on a small crop."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from gan_compress.evaluation import clips, images, metrics

KODIM23 = clips.data_dir() / "images" / "kodak" / "kodim23.png"
pytestmark = pytest.mark.skipif(not KODIM23.exists(), reason=f"shared data not found: {KODIM23}")


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    out = tmp_path_factory.mktemp("img")
    paths = []
    with Image.open(KODIM23) as im:
        for i, box in enumerate([(300, 150, 396, 214), (100, 300, 196, 364)]):
            path = out / f"crop{i}.png"
            im.crop(box).save(path)
            paths.append(path)
    return paths


def test_rgb_metrics_of_identical_images_are_perfect(crops):
    out = metrics.image_metrics(crops[0], crops[0])
    assert np.isinf(out["psnr_rgb"])
    assert out["msssim_rgb"] == pytest.approx(1.0, abs=1e-6)
    assert out["ssimulacra2"] == pytest.approx(100.0, abs=1e-6)


def test_image_sweep_measures_every_point_and_bd_rates_against_jpeg(crops, tmp_path):
    jpeg = dataclasses.replace(images.IMAGE_ANCHORS["jpeg"], ladder=(3, 8, 20))
    webp = dataclasses.replace(images.IMAGE_ANCHORS["webp"], ladder=(30, 60, 90))
    res = images.run_image_sweep(crops, tmp_path, [jpeg, webp], progress=False, log=lambda s: None)
    assert len(res["rows"]) == 12 and not [r for r in res["rows"] if r["error"]]
    by_q = {(r["image"], r["codec"], r["q"]): r for r in res["rows"]}
    # Lower JPEG q:v = finer quantisation: more bytes, higher PSNR.
    hi, lo = by_q[("crop0", "jpeg", 3)], by_q[("crop0", "jpeg", 20)]
    assert hi["bytes"] > lo["bytes"] and hi["psnr_rgb"] > lo["psnr_rgb"] > 20
    assert hi["bpp"] == pytest.approx(8 * hi["bytes"] / (96 * 64))
    assert len(res["mean_points"]) == 6
    (entry,) = [e for e in res["bd_rate"] if e["metric"] == "psnr_rgb"]
    assert (entry["test"], entry["anchor"]) == ("webp", "jpeg")
    assert (tmp_path / "images.json").exists()
