"""Exports a trained checkpoint as SavedModels in TF Serving's layout.

  .venv/bin/python export.py --model_dir=runs/small_gan --export_dir=exports/small
    -> exports/small/<version>/               full codec (compress/decompress; needs TFC ops)
    -> exports/small_transforms/<version>/    transform-only (analyze/entropy_parameters/
                                              synthesize; stock TF ops) + coding tables
  .venv/bin/python export.py --model_dir=runs/small_gan \
      --ship_to=gan_compress/assets/models/small-gan
    -> the codec's weights (float16), config and fingerprint in the form the package ships

The version defaults to one more than the highest existing version.

Inspecting: `saved_model_cli show --dir exports/small_transforms/1 --all` works as is. The full
codec's functions use tensorflow_compression's range-coding ops, which the stock
`saved_model_cli show --all` cannot load ("Op type not registered 'CreateRangeEncoder'"); run the
same CLI with the ops loaded:
  .venv/bin/python -c "import sys, tensorflow_compression
  from tensorflow.python.tools.saved_model_cli import main
  sys.argv[0] = 'saved_model_cli'; main()" show --dir exports/small/1 --all
"""

from __future__ import annotations

import sys

from absl import app, flags, logging

FLAGS = flags.FLAGS

flags.DEFINE_string("model_dir", None, "Training model_dir (config.json + checkpoints).")
flags.DEFINE_string("export_dir", None, "Base dir of the full codec SavedModel versions.")
flags.DEFINE_string("transforms_export_dir", None,
                    "Base dir of the transform-only SavedModel (default: <export_dir>_transforms).")
flags.DEFINE_enum("kind", "both", ["both", "codec", "transforms"], "What to export.")
flags.DEFINE_integer("version", None, "Integer version (default: next free).")
flags.DEFINE_string("model_card", None, "Markdown file copied into assets/MODEL_CARD.md.")
flags.DEFINE_string("ship_to", None,
                    "Also write the shipped form (float16 weights, config, fingerprint) here.")

flags.mark_flag_as_required("model_dir")


@flags.validator("version", message="--version must be a positive integer")
def _check_version(v):
    return v is None or v > 0


@flags.multi_flags_validator(["export_dir", "ship_to"],
                             message="give --export_dir and/or --ship_to")
def _check_outputs(f):
    return bool(f["export_dir"] or f["ship_to"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import os

    from gan_compress import api, export_lib

    card = ""
    if FLAGS.model_card:
        with open(FLAGS.model_card) as f:
            card = f.read()
    config = api._read_config(os.path.join(FLAGS.model_dir, api.CONFIG_NAME))
    model = api._build_from_checkpoint(FLAGS.model_dir, config)  # finalized
    if FLAGS.ship_to:
        # float16 weights + config + fingerprint + tables: the form the package ships
        fp = api.save_shipped_model(model, config, FLAGS.ship_to, card)
        logging.info("shipped model written to %s (fingerprint %s)", FLAGS.ship_to, fp)
    if FLAGS.export_dir:
        if FLAGS.kind in ("both", "codec"):
            path = export_lib.export_codec(model, config, FLAGS.export_dir, FLAGS.version, card)
            print(f"full codec SavedModel: {path}")
        if FLAGS.kind in ("both", "transforms"):
            base = FLAGS.transforms_export_dir or FLAGS.export_dir.rstrip("/") + "_transforms"
            path = export_lib.export_transforms(model, config, base, FLAGS.version, card)
            print(f"transform-only SavedModel: {path}")
    return 0


def run(argv=None):
    app.run(main, argv=argv or sys.argv)


if __name__ == "__main__":
    run()
