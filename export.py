"""Exports a trained checkpoint as SavedModels in TF Serving's layout.

  .venv/bin/python export.py --model=small-gan --model_base_path=/srv/models
    -> /srv/models/small-gan/<version>/             full codec (compress/decompress/model_info)
    -> /srv/models/small-gan-transforms/<version>/  transform-only (stock TF ops)
    -> /srv/models/models.config, batching.config   TF Serving's model and batching configs
  (--model is a shipped model name or folder, or use --model_dir=<training run>; --name sets
  the served name, default the model's)

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
flags.DEFINE_string("model", None, "A shipped model name or folder (instead of --model_dir).")
flags.DEFINE_string("model_base_path", None,
                    "TF Serving model base path: writes <base>/<name>/<version> and "
                    "<base>/<name>-transforms/<version> plus models.config and batching.config.")
flags.DEFINE_string("name", None, "Served model name under --model_base_path (default: the "
                    "shipped model's name, or the model_dir's folder name).")
flags.DEFINE_string("export_dir", None, "Base dir of the full codec SavedModel versions.")
flags.DEFINE_string("transforms_export_dir", None,
                    "Base dir of the transform-only SavedModel (default: <export_dir>_transforms).")
flags.DEFINE_enum("kind", "both", ["both", "codec", "transforms"], "What to export.")
flags.DEFINE_integer("version", None, "Integer version (default: next free).")
flags.DEFINE_string("model_card", None, "Markdown file copied into assets/MODEL_CARD.md.")
flags.DEFINE_string("ship_to", None,
                    "Also write the shipped form (float16 weights, config, fingerprint) here.")



@flags.multi_flags_validator(["model_dir", "model"], message="give one of --model_dir, --model")
def _check_source(f):
    return bool(f["model_dir"]) != bool(f["model"])


@flags.validator("version", message="--version must be a positive integer")
def _check_version(v):
    return v is None or v > 0


@flags.multi_flags_validator(["export_dir", "ship_to", "model_base_path"],
                             message="give --model_base_path, --export_dir and/or --ship_to")
def _check_outputs(f):
    return bool(f["export_dir"] or f["ship_to"] or f["model_base_path"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import os

    from gan_compress import api, export_lib, loading

    card = ""
    if FLAGS.model_card:
        with open(FLAGS.model_card) as f:
            card = f.read()
    if FLAGS.model:
        loaded = api.load(FLAGS.model)
        model, config, name = loaded._model, loaded.config, loaded.name
        pmodel = loaded._pframe
    else:
        config = loading._read_config(os.path.join(FLAGS.model_dir, loading.CONFIG_NAME))
        model, pmodel = loading.load_networks(FLAGS.model_dir, config)  # finalized
        name = os.path.basename(os.path.normpath(FLAGS.model_dir))
    name = FLAGS.name or name
    if FLAGS.model_base_path:
        codec_dir, transforms_dir = export_lib.export_for_serving(
            model, config, FLAGS.model_base_path, name, FLAGS.version, card, pmodel)
        print(f"full codec SavedModel: {codec_dir}")
        print(f"transform-only SavedModel: {transforms_dir}")
        print(f"TF Serving configs: {os.path.join(FLAGS.model_base_path, 'models.config')}, "
              f"{os.path.join(FLAGS.model_base_path, 'batching.config')}")
    if FLAGS.ship_to:
        # float16 weights + config + fingerprint + tables: the form the package ships
        fp = api.save_shipped_model(model, config, FLAGS.ship_to, card, pmodel=pmodel)
        logging.info("shipped model written to %s (fingerprint %s)", FLAGS.ship_to, fp)
    if FLAGS.export_dir:
        if FLAGS.kind in ("both", "codec"):
            path = export_lib.export_codec(model, config, FLAGS.export_dir, FLAGS.version, card,
                                           pmodel)
            print(f"full codec SavedModel: {path}")
        if FLAGS.kind in ("both", "transforms"):
            base = FLAGS.transforms_export_dir or FLAGS.export_dir.rstrip("/") + "_transforms"
            path = export_lib.export_transforms(model, config, base, FLAGS.version, card, pmodel)
            print(f"transform-only SavedModel: {path}")
    return 0


def run(argv=None):
    app.run(main, argv=argv or sys.argv)


if __name__ == "__main__":
    run()
