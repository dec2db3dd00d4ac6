"""A TF Serving-compatible gRPC server for gan_compress SavedModels (`gan-compress serve`).

A stock `tensorflow_model_server` cannot load the full codec (its graph uses
tensorflow-compression's range-coding ops). This server answers the same RPCs with the stock
`tensorflow_serving.apis` messages, over SavedModels loaded in this Python process (which has
TFC's ops), so clients written for TF Serving work unchanged:

  PredictionService.Predict            run a signature of a model version
  PredictionService.GetModelMetadata   the signature defs ("signature_def" field)
  ModelService.GetModelStatus          the versions being served and their state

Layout (TF Serving's): every folder under `model_base_path` is a model served under the
folder's name, every integer folder inside it a version. The latest version answers unless the
request names one. A poll thread picks up new version folders while running; a folder is loaded
only once its `saved_model.pb` is present and loads (our exporter renames a finished folder into
place, so a half-written version is never seen), and a version whose folder disappears is
unloaded.

Errors follow TF Serving: NOT_FOUND for an unknown model, version or signature;
INVALID_ARGUMENT for a missing or unexpected input name, a wrong dtype or shape, or inputs the
model rejects; RESOURCE_EXHAUSTED (from gRPC) for a request above the message size limit.
Every bad request is answered and the server keeps serving.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent import futures
from dataclasses import dataclass

import grpc
import numpy as np
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

log = logging.getLogger("gan_compress.serve")

DEFAULT_MAX_MESSAGE_BYTES = 256 << 20


@dataclass(frozen=True)
class Servable:
    """One loaded version: the SavedModel object and its signature defs (protos)."""

    version: int
    path: str
    loaded: object
    signature_defs: dict


class NotFound(Exception):
    pass


def _signature_defs(path: str) -> dict:
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    defs = dict(sm.meta_graphs[0].signature_def)
    defs.pop("__saved_model_init_op", None)
    return defs


class ModelRepository:
    """The models under `base` and their loaded versions, refreshed by `refresh()`."""

    def __init__(self, base: str):
        self.base = base
        self._lock = threading.Lock()
        self._models: dict[str, dict[int, Servable]] = {}
        self._failed: dict[str, float] = {}  # version dir -> mtime of its saved_model.pb

    def refresh(self) -> None:
        """Loads new complete versions, unloads versions whose folder is gone."""
        import tensorflow as tf

        found: dict[str, dict[int, str]] = {}
        for name in sorted(os.listdir(self.base)) if os.path.isdir(self.base) else []:
            mdir = os.path.join(self.base, name)
            if name.startswith(".") or not os.path.isdir(mdir):
                continue
            found[name] = {int(v): os.path.join(mdir, v) for v in os.listdir(mdir)
                           if v.isdigit() and os.path.isfile(
                               os.path.join(mdir, v, "saved_model.pb"))}
        with self._lock:
            current = {n: dict(vs) for n, vs in self._models.items()}
        for name, versions in found.items():
            for v, path in versions.items():
                if v in current.get(name, {}):
                    continue
                pb = os.path.join(path, "saved_model.pb")
                mtime = os.path.getmtime(pb)
                if self._failed.get(path) == mtime:
                    continue
                try:
                    servable = Servable(v, path, tf.saved_model.load(path), _signature_defs(path))
                except Exception as e:  # noqa: BLE001 - a bad folder must not stop the server
                    self._failed[path] = mtime
                    log.warning("cannot load %s: %s", path, str(e).splitlines()[0][:200])
                    continue
                current.setdefault(name, {})[v] = servable
                log.info("loaded %s version %d from %s", name, v, path)
        for name in list(current):
            for v in list(current[name]):
                if v not in found.get(name, {}):
                    del current[name][v]
                    log.info("unloaded %s version %d (folder removed)", name, v)
            if not current[name]:
                del current[name]
        with self._lock:
            self._models = current

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def get(self, name: str, version: int | None = None) -> Servable:
        with self._lock:
            versions = self._models.get(name)
        if not versions:
            raise NotFound(f"Servable not found for request: Latest({name})" if version is None
                           else f"Servable not found for request: Specific({name}, {version})")
        if version is None:
            return versions[max(versions)]
        if version not in versions:
            raise NotFound(f"Servable not found for request: Specific({name}, {version})")
        return versions[version]

    def versions(self, name: str) -> list[int]:
        with self._lock:
            return sorted(self._models.get(name, {}))


def _check_input(key: str, proto, spec) -> str | None:
    """A problem with input `key` against the signature's TensorInfo, or None."""
    if proto.dtype != spec.dtype:
        from tensorflow.core.framework import types_pb2

        return (f"Expects arg[{key}] to be {types_pb2.DataType.Name(spec.dtype)} but "
                f"{types_pb2.DataType.Name(proto.dtype)} is provided")
    if spec.tensor_shape.unknown_rank:
        return None
    want = [d.size for d in spec.tensor_shape.dim]
    got = [d.size for d in proto.tensor_shape.dim]
    if len(want) != len(got) or any(w not in (-1, g) for w, g in zip(want, got, strict=False)):
        return f"input {key} has shape {got}, the signature expects {want} (-1: any)"
    return None


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, repo: ModelRepository):
        self.repo = repo

    def _servable(self, spec, context):
        version = spec.version.value if spec.HasField("version") else None
        if spec.HasField("version_label"):
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"version labels are not supported (got {spec.version_label!r})")
        try:
            return self.repo.get(spec.name, version)
        except NotFound as e:
            context.abort(grpc.StatusCode.NOT_FOUND, str(e))

    def Predict(self, request, context):  # noqa: N802 - gRPC method name
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        servable = self._servable(request.model_spec, context)
        sig_name = request.model_spec.signature_name or "serving_default"
        sig = servable.signature_defs.get(sig_name)
        if sig is None:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"Serving signature key \"{sig_name}\" not found.")
        given, wanted = set(request.inputs), set(sig.inputs)
        if given != wanted:
            missing, extra = sorted(wanted - given), sorted(given - wanted)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"signature {sig_name}: missing inputs {missing}, unexpected inputs "
                          f"{extra}; it takes {sorted(wanted)}")
        for key in sorted(given):
            problem = _check_input(key, request.inputs[key], sig.inputs[key])
            if problem:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)
        bad_filter = sorted(set(request.output_filter) - set(sig.outputs))
        if bad_filter:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"output_filter names unknown outputs {bad_filter}")
        try:
            args = {k: tf.constant(tf.make_ndarray(request.inputs[k])) for k in given}
            outputs = servable.loaded.signatures[sig_name](**args)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          str(getattr(e, "message", e)).strip().splitlines()[0][:500])
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = sig_name
        keep = set(request.output_filter) or set(outputs)
        for k, v in outputs.items():
            if k in keep:
                response.outputs[k].CopyFrom(tf.make_tensor_proto(np.asarray(v.numpy())))
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        from tensorflow_serving.apis import get_model_metadata_pb2

        fields = set(request.metadata_field)
        if fields - {"signature_def"} or not fields:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"metadata_field must be ['signature_def'], got {sorted(fields)}")
        servable = self._servable(request.model_spec, context)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = servable.version
        sigs = get_model_metadata_pb2.SignatureDefMap()
        for k, v in servable.signature_defs.items():
            sigs.signature_def[k].CopyFrom(v)
        response.metadata["signature_def"].Pack(sigs)
        return response


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, repo: ModelRepository):
        self.repo = repo

    def GetModelStatus(self, request, context):  # noqa: N802
        from tensorflow_serving.apis import get_model_status_pb2

        spec = request.model_spec
        versions = self.repo.versions(spec.name)
        if spec.HasField("version"):
            versions = [v for v in versions if v == spec.version.value]
        if not versions:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"Could not find any versions of model {spec.name}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for v in versions:
            s = response.model_version_status.add()
            s.version = v
            s.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
        return response

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802
        context.abort(grpc.StatusCode.UNIMPLEMENTED,
                      "models are picked up from --model_base_path; no config reloads")


class Server:
    """`Server(base, port).start()`; `stop()`. Port 0 picks a free port (see `.port`)."""

    def __init__(self, model_base_path: str, port: int = 8500, host: str = "0.0.0.0",
                 threads: int = 8, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 poll_seconds: float = 1.0, tls_cert: str | None = None,
                 tls_key: str | None = None):
        import tensorflow_compression  # noqa: F401  (registers the range-coding ops)
        if not os.path.isdir(model_base_path):
            raise FileNotFoundError(f"{model_base_path}: model base path is not a directory")
        self.repo = ModelRepository(model_base_path)
        self.repo.refresh()
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        self.grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=threads), options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(self.repo), self.grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            _ModelService(self.repo), self.grpc)
        address = f"{host}:{port}"
        if tls_cert:
            with open(tls_cert, "rb") as f:
                cert = f.read()
            with open(tls_key, "rb") as f:
                key = f.read()
            self.port = self.grpc.add_secure_port(
                address, grpc.ssl_server_credentials([(key, cert)]))
        else:
            self.port = self.grpc.add_insecure_port(address)
        if not self.port:
            raise OSError(f"cannot listen on {address}")
        self._poller = threading.Thread(target=self._poll, name="model-poller", daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.repo.refresh()
            except OSError as e:  # the base path vanished or is unreadable for a moment
                log.warning("cannot scan %s: %s", self.repo.base, e)

    def start(self) -> Server:
        self.grpc.start()
        self._poller.start()
        return self

    def wait(self) -> None:
        while not self._stop.is_set():
            time.sleep(0.5)

    def stop(self, grace: float = 2.0) -> None:
        self._stop.set()
        self.grpc.stop(grace).wait()
