"""What makes a model trustworthy to use: the audit trail, audited actions, MLflow tracking,
the model registry with its active version and site operating points, and model cards.

Order inside: `audit_chain` <- `audit`, `tracking`, `promotion`, `modelcard_markdown` <-
`modelcard` <- `registry` <- `audited`. MLflow is imported only by `tracking`, inside its functions.
"""

from pneumonet_core.governance import (
    audit,
    audit_chain,
    audited,
    modelcard,
    modelcard_markdown,
    promotion,
    registry,
    tracking,
)
from pneumonet_core.governance.registry import ResolvedModel, active_predictor, resolve_model

__all__ = [
    "ResolvedModel",
    "active_predictor",
    "audit",
    "audit_chain",
    "audited",
    "modelcard",
    "modelcard_markdown",
    "promotion",
    "registry",
    "resolve_model",
    "tracking",
]
