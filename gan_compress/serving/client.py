"""gRPC client for models served by TF Serving or `gan-compress serve`, with the stock
`tensorflow_serving.apis` stubs.

    client = ServingClient("localhost:8500")
    client.status("small-gan")                  # [(version, "AVAILABLE"), ...]
    codec = client.codec("small-gan")           # an api.Codec coding through the server
    codec.compress_video("in.y4m", "out.gcv")   # the same bytes as local coding
    tc = client.transform_client("small-gan-transforms")  # stock-ops model, coding here

Every call has a deadline (`timeout` seconds), is retried with backoff on UNAVAILABLE (a server
that is starting or restarting), and is bounded by `max_message_bytes` both ways.
"""

from __future__ import annotations

import time

import grpc
import numpy as np

# Positional argument order of the exported signatures (`export_lib`); a SignatureDef's
# inputs are an unordered map.
ARG_ORDER = {
    "compress": ("frames", "quality"),
    "decompress": ("y_strings", "z_strings", "image_shape", "quality"),
    "analyze": ("frames", "quality"),
    "entropy_parameters": ("z_symbols", "quality"),
    "synthesize": ("y_symbols", "z_symbols", "image_shape", "quality"),
    "model_info": (),
    "coding_tables": (),
    "p_compress": ("frames", "references", "quality"),
    "p_decompress": ("motion_y", "motion_z", "residual_y", "residual_z", "references",
                     "image_shape", "quality"),
    "p_analyze": ("frames", "references", "quality"),
    "p_entropy_parameters": ("motion_z_symbols", "residual_z_symbols", "quality"),
    "p_synthesize": ("motion_y_symbols", "motion_z_symbols", "residual_y_symbols",
                     "residual_z_symbols", "references", "image_shape", "quality"),
}


class ServingError(RuntimeError):
    """A failed RPC: `code` is the grpc.StatusCode, the message says which call and why."""

    def __init__(self, code, message: str):
        super().__init__(message)
        self.code = code


class ServingClient:
    def __init__(self, target: str, timeout: float = 60.0, retries: int = 4,
                 max_message_bytes: int = 256 << 20, root_certificates: bytes | None = None):
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        options = [("grpc.max_receive_message_length", max_message_bytes),
                   ("grpc.max_send_message_length", max_message_bytes)]
        if root_certificates is not None:
            creds = grpc.ssl_channel_credentials(root_certificates)
            self.channel = grpc.secure_channel(target, creds, options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)
        self.target, self.timeout, self.retries = target, timeout, retries
        self.predictions = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def _call(self, method, request, what: str):
        delay = 0.25
        for attempt in range(self.retries + 1):
            try:
                return method(request, timeout=self.timeout)
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE and attempt < self.retries:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise ServingError(e.code(), f"{self.target}: {what}: {e.code().name}: "
                                             f"{e.details()}") from None
        raise AssertionError("unreachable")

    @staticmethod
    def _spec(spec, name: str, version: int | None, signature: str | None = None) -> None:
        spec.name = name
        if version is not None:
            spec.version.value = int(version)
        if signature is not None:
            spec.signature_name = signature

    def predict(self, model: str, signature: str, inputs: dict, version: int | None = None
                ) -> dict[str, np.ndarray]:
        """Runs `signature` of `model` on numpy `inputs` (name -> array); returns its outputs."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, model, version, signature)
        for k, v in inputs.items():
            request.inputs[k].CopyFrom(tf.make_tensor_proto(v))
        response = self._call(self.predictions.Predict, request, f"Predict {model}/{signature}")
        return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}

    def metadata(self, model: str, version: int | None = None) -> dict:
        """signature name -> SignatureDef proto."""
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest()
        self._spec(request.model_spec, model, version)
        request.metadata_field.append("signature_def")
        response = self._call(self.predictions.GetModelMetadata, request,
                              f"GetModelMetadata {model}")
        sigs = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(sigs)
        return dict(sigs.signature_def)

    def status(self, model: str, version: int | None = None) -> list[tuple[int, str]]:
        """[(version, state name)] of `model` on the server."""
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model, version)
        response = self._call(self.models.GetModelStatus, request, f"GetModelStatus {model}")
        return [(s.version, get_model_status_pb2.ModelVersionStatus.State.Name(s.state))
                for s in response.model_version_status]

    def model(self, name: str, version: int | None = None) -> RemoteModel:
        return RemoteModel(self, name, version)

    def codec(self, name: str, version: int | None = None):
        """An `api.Codec` whose compress/decompress run on the server's full-codec model."""
        from gan_compress import api, loading
        from gan_compress.configs import Config

        remote = self.model(name, version)
        info = {k: v.numpy() for k, v in remote.model_info().items()}
        config = Config.from_json(_text(info["config"]))
        return api.Codec(loading._SavedModelCodec(remote, eager=True), config,
                         _text(info["fingerprint"]), name)

    def transform_client(self, name: str, version: int | None = None):
        """A `TransformClient` over the server's transform-only model (range coding here)."""
        from gan_compress.transform_client import TransformClient

        remote = self.model(name, version)
        tables = {k: v.numpy() for k, v in remote.coding_tables().items()}
        return TransformClient.from_tables_dict(remote, tables)


def _text(value) -> str:
    v = value.item() if isinstance(value, np.ndarray) else value
    return v.decode() if isinstance(v, bytes) else str(v)


class RemoteModel:
    """Signatures of a served model as methods: `remote.compress(frames, quality)` -> dict."""

    def __init__(self, client: ServingClient, name: str, version: int | None = None):
        self.client, self.name, self.version = client, name, version

    def __getattr__(self, signature: str):
        if signature.startswith("_"):
            raise AttributeError(signature)
        order = ARG_ORDER.get(signature, ())

        def call(*args, **kwargs):
            if len(args) > len(order):
                raise TypeError(f"{signature} takes {len(order)} positional inputs {order}")
            inputs = dict(zip(order, args, strict=False), **kwargs)
            import tensorflow as tf

            inputs = {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v)
                      for k, v in inputs.items()}
            out = self.client.predict(self.name, signature, inputs, self.version)
            return {k: tf.constant(v) for k, v in out.items()}  # like a loaded signature

        return call
