"""Code bundles: `POST /api/v1/code-bundles` with a gzip'd tar as the body, streamed to disk."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from astrago.api.deps import PrincipalDep, ServicesDep
from astrago.services.schemas import CodeBundleOut

router = APIRouter(prefix="/api/v1/code-bundles", tags=["code"])


@router.post(
    "",
    response_model=CodeBundleOut,
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload(request: Request, services: ServicesDep, principal: PrincipalDep) -> CodeBundleOut:
    """Upload the directory a workload should start in (what `astrago run` does); refer to it as `code`."""
    return await services.code_bundles.upload(principal, request.stream())
