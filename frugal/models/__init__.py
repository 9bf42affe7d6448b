"""Model registry and architectures. Importing this package registers every model."""

# imported for their side effect: each module registers its models
from frugal.models import baselines as baselines
from frugal.models import cnn2d as cnn2d
from frugal.models import compact as compact
from frugal.models import large as large
from frugal.models import lowrank as lowrank
from frugal.models import sparse as sparse
from frugal.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
