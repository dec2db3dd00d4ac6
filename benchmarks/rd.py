"""Full rate-distortion benchmark: the 6 eval clips and Kodak, gan_compress vs the anchors.

    .venv/bin/python benchmarks/rd.py [--report reports/rd] [--anchors-only] [--no-images]
                                      [any other `gan-compress eval` option]

Same options as `gan-compress eval` (see gan_compress/evaluation/cli.py); this script only
changes the defaults: report directory `reports/rd`, and the Kodak image sweep on (`--no-images`
turns it off). gan_compress is skipped with a message while its CLI is not usable. Prints the
reproduction check against data/reference/anchors_eval.json and the mean BD-rates.
Takes about 1.5-2 h on 2 cores (the 720p clips' x265 veryslow / VVenC encodes and the
SSIMULACRA2 / MS-SSIM passes dominate); `--resume` continues an interrupted run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from gan_compress.evaluation import cli


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--report" not in argv:
        argv = ["--report", str(Path(__file__).resolve().parents[1] / "reports" / "rd"), *argv]
    if "--no-images" in argv:
        argv.remove("--no-images")
    elif "--images-only" not in argv and "--images" not in argv:
        argv.append("--images")
    rc = cli.main(argv)
    if rc:
        return rc
    report = Path(argv[argv.index("--report") + 1])
    results = json.loads((report / "results.json").read_text())
    ref = results.get("reference_check") or {}
    if ref.get("points"):
        print(f"reference reproduction: {ref['points']}/{ref['reference_points']} points")
        print(f"  bytes: max |dev| {ref['max_abs_bytes_dev_pct']:.3f} % "
              f"({ref['bytes_within_1pct']} within 1 %)")
        for key, value in ref.items():
            if key.startswith("max_abs_") and key.endswith("_dev"):
                name = key[len("max_abs_"):-len("_dev")]
                print(f"  {name}: max |dev| {value:.4f} "
                      f"({ref.get(f'{name}_within_0.05')} within 0.05)")
    for entry in results.get("bd_rate", []):
        mean = entry["mean"]
        value = "n/a" if mean["bd_rate"] is None else f"{mean['bd_rate']:+.1f}%"
        flag = "" if mean["flag"] == "ok" else f" [{mean['flag']}]"
        print(f"BD-rate {entry['test']} vs {entry['anchor']} on {entry['metric']}: "
              f"{value}{flag} over {mean['n_clips']} clips")
    print(f"report: {report / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
