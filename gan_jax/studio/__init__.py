"""The studio: a local web page to explore a trained model (see studio.py and server.py)."""

from gan_jax.studio.server import RequestError, Studio, create_app, discover_runs

__all__ = ["RequestError", "Studio", "create_app", "discover_runs"]
