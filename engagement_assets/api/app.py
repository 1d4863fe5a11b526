"""`engagement-api`: a read-only HTTP API (FastAPI, OpenAPI docs at /docs) over the conversation analytics
and the engagement outputs, served from the Parquet layout. Every request but /health needs the configured
token (`Authorization: Bearer …`, compared in constant time); pages are bounded; a bad parameter is a 400
that says which."""

import hmac
import os
import sys
from datetime import date
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engagement_assets.api.reader import NotStored, Page, Reader
from engagement_assets.api.settings import ApiSettings
from engagement_assets.conversations.settings import ConversationSettings
from engagement_assets.settings import Settings
from engagement_assets.storage.store import open_store

TOKEN_VARIABLE = "ENGAGEMENT_API_TOKEN"
# Identifiers and labels, never free text: short, printable.
Text = Annotated[str | None, Query(min_length=1, max_length=128, pattern=r"^[\w.:@+/~%-]+$")]


def create_app(reader: Reader, token: str, max_page_size: int) -> FastAPI:
    app = FastAPI(
        title="Engagement platform read API",
        description=__doc__,
        version="1",
    )
    bearer = HTTPBearer(auto_error=False)

    def authorised(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        sent = credentials.credentials if credentials else ""
        if not hmac.compare_digest(sent.encode(), token.encode()):
            raise HTTPException(
                status_code=401, detail="a valid token is required", headers={"WWW-Authenticate": "Bearer"}
            )

    PageNumber = Annotated[int, Query(ge=1, le=1_000_000)]
    PageSize = Annotated[int, Query(ge=1, le=max_page_size)]
    secured = [Depends(authorised)]

    def serve(query: str, params: dict, page: int, page_size: int, day: date | None = None) -> dict:
        try:
            found = reader.page(query, params, page, page_size, day)
        except NotStored as err:
            raise HTTPException(status_code=404, detail=str(err)) from None
        return _body(found)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [
            {"parameter": ".".join(str(part) for part in problem["loc"][1:]), "problem": problem["msg"]}
            for problem in error.errors()
        ]
        return JSONResponse(status_code=400, content={"detail": "bad parameter", "problems": problems})

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/conversations/{day}", dependencies=secured)
    def conversations(
        day: date, page: PageNumber = 1, page_size: PageSize = 100, user_id: Text = None, topic: Text = None
    ):
        """The day's conversations (UTC), with their categories; filter by learner or topic."""
        return serve("conversations", {"user_id": user_id, "topic": topic}, page, page_size, day)

    @app.get("/messages/{day}", dependencies=secured)
    def messages(
        day: date,
        page: PageNumber = 1,
        page_size: PageSize = 100,
        user_id: Text = None,
        conversation_id: Text = None,
        topic: Text = None,
    ):
        """The day's messages with their conversation's topic; filter by learner, conversation or topic."""
        params = {"user_id": user_id, "conversation_id": conversation_id, "topic": topic}
        return serve("messages", params, page, page_size, day)

    @app.get("/categories/{day}", dependencies=secured)
    def categories(day: date, page: PageNumber = 1, page_size: PageSize = 100, topic: Text = None):
        """Topic, intent and sentiment of the day's conversations."""
        return serve("categories", {"topic": topic}, page, page_size, day)

    @app.get("/users", dependencies=secured)
    def users(page: PageNumber = 1, page_size: PageSize = 100, user_id: Text = None):
        """Conversation analytics per learner."""
        return serve("user_analytics", {"user_id": user_id}, page, page_size)

    @app.get("/reports", dependencies=secured)
    def reports(
        page: PageNumber = 1,
        page_size: PageSize = 100,
        period: Literal["daily", "weekly", "monthly"] | None = None,
    ):
        """The daily, weekly and monthly conversation reports."""
        return serve("analytics_reports", {"period": period}, page, page_size)

    @app.get("/engagement/phases", dependencies=secured)
    def phases(page: PageNumber = 1, page_size: PageSize = 100, user_id: Text = None, phase: Text = None):
        """Phase-level engagement: one row per learner × session × milestone level × phase."""
        return serve("phase_level_engagement", {"user_id": user_id, "phase": phase}, page, page_size)

    @app.get("/engagement/risk", dependencies=secured)
    def risk(
        page: PageNumber = 1,
        page_size: PageSize = 100,
        band: Literal["high", "medium", "low", "unknown"] | None = None,
    ):
        """Each learner's risk of stopping within 7 days, highest first, with the reasons."""
        return serve("learner_risk", {"band": band}, page, page_size)

    return app


def _body(found: Page) -> dict:
    return {"page": found.page, "page_size": found.page_size, "total": found.total, "rows": found.rows}


def app_from_environment() -> FastAPI:
    """The app on the configured storage, or a clear exit when no token is configured."""
    settings, api = Settings.from_env(), ApiSettings.from_env()
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        sys.exit(f"set {TOKEN_VARIABLE}: the API serves nothing without a token")
    conversations_url = ConversationSettings.from_env().storage_url or settings.storage_url
    reader = Reader(open_store(settings.storage_url), open_store(conversations_url))
    return create_app(reader, token, api.max_page_size)


def main() -> None:
    import uvicorn

    api = ApiSettings.from_env()
    uvicorn.run(app_from_environment(), host=api.host, port=api.port, log_level="info")
