"""jaxmodels: pure functional JAX ops, small models built from them, and a training loop."""

__version__ = "0.1.0"
