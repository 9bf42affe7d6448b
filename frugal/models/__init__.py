"""Model registry and architectures. Importing this package registers every model."""

from frugal.models import baselines as baselines  # noqa: F401  (registers models)
from frugal.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
