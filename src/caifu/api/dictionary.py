"""The data dictionary: every table and column, its level, PII flag, owner, descriptions and
the metrics, features and tags that use it (``docs/data-dictionary.md``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from caifu.api.deps import ContainerDep, CurrentPrincipal, require
from caifu.api.schemas.dictionary import DataDictionary
from caifu.services.metrics import dictionary

router = APIRouter()


@router.get("/v1/dictionary", operation_id="get_data_dictionary", tags=["metrics"],
            response_model=DataDictionary, dependencies=[Depends(require("dictionary.read"))])
def get_data_dictionary(p: CurrentPrincipal, c: ContainerDep) -> dict[str, Any]:
    """The caller's tenant's data dictionary: the contracts, the metric files (its own
    too) and the column lineage of metrics, profile features and rule tags."""
    return dictionary.for_caller(c, p)
