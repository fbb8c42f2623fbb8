"""Request/response models: they validate the handlers and generate the OpenAPI document.

Shared shapes live here; each API area keeps its own models in ``laserd/schemas/<area>.py``.
"""

from laserd.schemas.common import (
    ErrorBody,
    ErrorEnvelope,
    FieldError,
    Health,
    Page,
    PageQuery,
    StrictModel,
)

__all__ = [
    "ErrorBody",
    "ErrorEnvelope",
    "FieldError",
    "Health",
    "Page",
    "PageQuery",
    "StrictModel",
]
