"""Serving over TF Serving's gRPC API: `server` (`gan-compress serve`) and `client`."""
