"""What routes get injected: the services built once at start-up, admin auth, rate limiting."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..articles import ArticleCatalog
from ..assistant import Assistant
from ..conversation import SessionStore
from ..settings import Settings
from .limits import RateLimiter


@dataclass(frozen=True)
class Services:
    settings: Settings
    assistant: Assistant
    sessions: SessionStore
    catalog: ArticleCatalog
    limiter: RateLimiter


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


#: A route parameter ``svc: ServicesDep`` receives the Services.
ServicesDep = Annotated[Services, Depends(services)]


_bearer = HTTPBearer(auto_error=False, description="The admin token (setting api.admin_token).")


def require_admin(
    svc: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    token = svc.settings.api.admin_token
    if token is None or not token.get_secret_value():
        raise HTTPException(403, "Article admin endpoints are disabled: set TONGCHENG_QA_API__ADMIN_TOKEN "
                                 "on the server and send it as 'Authorization: Bearer <token>'.")
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise HTTPException(401, "Missing or wrong admin token: send 'Authorization: Bearer <token>'.",
                            headers={"WWW-Authenticate": "Bearer"})


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def rate_limited(request: Request, svc: ServicesDep) -> None:
    wait = svc.limiter.check(client_key(request))
    if wait > 0:
        raise HTTPException(429, f"Too many questions from this client: the limit is "
                                 f"{svc.limiter.per_minute} a minute. Retry in {RateLimiter.retry_after(wait)} s.",
                            headers={"Retry-After": RateLimiter.retry_after(wait)})
