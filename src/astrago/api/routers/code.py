"""Code bundles: `POST /api/v1/code-bundles` with a gzip'd tar as the body, streamed to disk; `GET
/api/v1/code-bundles/<id>/archive` gives it back to its uploader, or to a workload's pod showing the
download credential it was launched with (`X-AstraGo-Code-Credential`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, status
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials

from astrago.api.deps import PrincipalDep, ServicesDep, bearer, principal
from astrago.services.schemas import CodeBundleOut

router = APIRouter(prefix="/api/v1/code-bundles", tags=["code"])

CREDENTIAL_HEADER = "X-AstraGo-Code-Credential"


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


@router.get(
    "/{bundle_id}/archive",
    response_class=FileResponse,
    responses={200: {"content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def archive(
    bundle_id: str,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    code_credential: Annotated[str | None, Header(alias=CREDENTIAL_HEADER)] = None,
) -> FileResponse:
    """The bundle as uploaded (a gzip'd tar): for its uploader, or for the pods of a workload that runs it."""
    if code_credential is not None:
        path = await services.code_bundles.archive_for_workload(bundle_id, code_credential)
    else:
        path = services.code_bundles.archive(await principal(services, credentials), bundle_id)
    return FileResponse(path, media_type="application/gzip", filename=f"{bundle_id}.tar.gz")
