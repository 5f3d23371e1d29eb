"""The review page's server: the page itself and a small JSON API over one run folder.

    GET  /                            the page (HTML, CSS and script inline; nothing fetched from elsewhere)
    GET  /api/next?reviewer=NAME      the reviewer's next item, blind: row, input, reference, left and right answers
    POST /api/rate                    {reviewer, item, choice: left|right|tie|both_bad, score_left, score_right,
                                      comment}: saved (fsynced) before the answer; returns the progress
    GET  /api/progress?reviewer=NAME  rated of planned for the reviewer, and everyone's count
    GET  /health                      {"ok": true}

No answer names a contender: the page sees items by an opaque id and answers as left and right;
this server maps them back to a and b. Errors are JSON, `{"error": {"message": ...}}`. The same
Guard as `adaptlab serve` checks every request (the Host without an API key, the key with one),
except that the page itself (no data in it) loads without the key; its API calls send it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adaptlab.errors import AdaptlabError
from adaptlab.results import CompareResults, PredictionRow
from adaptlab.reviews.plan import Item, Plan, plan_for, rated_keys, review_secret
from adaptlab.reviews.ratings import (
    Rating,
    append_rating,
    check_reviewer,
    load_ratings,
    read_reviewer_file,
    reviewer_file,
)
from adaptlab.serve.guard import ApiError, Guard

MAX_BODY_BYTES = 64 * 1024  # a rating with a long comment is ~5 kB
MAX_COMMENT = 4000
PAGE_PATHS = ("/", "/index.html")


class RateRequest(BaseModel):
    """What the page posts for one click."""

    model_config = ConfigDict(extra="forbid")

    reviewer: str
    item: str = Field(min_length=1, max_length=64, description="the item's id from /api/next")
    choice: Literal["left", "right", "tie", "both_bad"]
    score_left: int | None = Field(None, ge=1, le=5)
    score_right: int | None = Field(None, ge=1, le=5)
    comment: str | None = Field(None, max_length=MAX_COMMENT)


@dataclass
class ReviewState:
    """The run's results (read once at start), its folder and the plans made so far, one per reviewer."""

    run_dir: Path
    results: CompareResults
    seed: int
    salt: str = ""  # the run's review secret (plan.review_secret)
    plans: dict[str, Plan] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def plan(self, reviewer: str) -> Plan:
        with self.lock:
            if reviewer not in self.plans:
                self.plans[reviewer] = plan_for(self.results, reviewer, self.seed, salt=self.salt)
            return self.plans[reviewer]

    def rated(self, reviewer: str) -> set[tuple[int, frozenset[str]]]:
        """(row, pair) the reviewer has rated, from their file (so an import or another server's ratings count)."""
        path = reviewer_file(self.run_dir, reviewer)
        return rated_keys(read_reviewer_file(path)) if path.is_file() else set()

    def progress(self, reviewer: str) -> dict[str, Any]:
        plan = self.plan(reviewer)
        everyone = load_ratings(self.run_dir)
        return {
            "reviewer": reviewer,
            "rated": plan.rated_of(self.rated(reviewer)),
            "planned": plan.target,
            "available": len(plan.items),
            "everyone": len(everyone),
            "reviewers": len({r.reviewer for r in everyone}),
        }


class _PageGuard(Guard):
    """serve's Guard, except that with an API key the page itself loads without one (it holds no data, and a browser
    cannot send a header when it opens a URL); every API call still needs the key."""

    def _check(self, scope, headers: dict) -> None:
        if self.api_key and scope["path"] in PAGE_PATHS and scope["method"] in ("GET", "HEAD"):
            return
        super()._check(scope, headers)


def create_review_app(
    run_dir: Path, seed: int | None = None, api_key: str | None = None, allowed_hosts: tuple[str, ...] = ()
):
    """The FastAPI app of the review page over `run_dir` (a compare run folder); `api_key` None serves loopback Host
    names only, as `adaptlab serve` does."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    from adaptlab.results import load_results
    from adaptlab.reviews.page import render_page
    from adaptlab.reviews.ratings import run_contenders_and_rows

    run_dir = Path(run_dir)
    run_contenders_and_rows(run_dir)  # a folder without results.json is refused here, not at the first click
    results = load_results(run_dir / "results.json")
    state = ReviewState(run_dir, results, results.seed if seed is None else seed, review_secret(run_dir))
    app = FastAPI(title="adaptlab review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.review = state
    page = render_page(results.task.name, keyed=api_key is not None)

    def error(status: int, message: str) -> Response:
        return Response(ApiError(status, message).body(), status, media_type="application/json")

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        return error(400, f"field {where}: {first['msg']}")

    @app.exception_handler(AdaptlabError)
    async def _ours(request: Request, exc: AdaptlabError):
        return error(500, str(exc).replace(str(run_dir), "RUN"))

    @app.get("/", response_class=HTMLResponse)
    @app.get("/index.html", response_class=HTMLResponse)
    def _page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store", "Content-Security-Policy": CSP})

    @app.get("/health")
    def _health() -> dict:
        return {"ok": True}

    @app.get("/api/progress")
    def _progress(reviewer: str = "") -> JSONResponse:
        return _json(state.progress(_reviewer(reviewer)))

    @app.get("/api/next")
    def _next(reviewer: str = "") -> JSONResponse:
        name = _reviewer(reviewer)
        item = state.plan(name).next_item(state.rated(name))
        body: dict[str, Any] = {"progress": state.progress(name), "done": item is None, "item": None}
        if item is not None:
            body["item"] = item_view(state.results, item, state.seed, state.salt)
        return _json(body)

    @app.post("/api/rate")
    def _rate(request: RateRequest) -> JSONResponse:
        name = _reviewer(request.reviewer)
        item = state.plan(name).by_token().get(request.item)
        if item is None:
            raise ApiError(
                409, "this item is not in your plan (was the run's results.json rewritten?); reload the page"
            )
        append_rating(state.run_dir, rating_of(request, item, name))
        return _json({"saved": True, "progress": state.progress(name)})

    app.add_middleware(_PageGuard, api_key=api_key, max_body_bytes=MAX_BODY_BYTES, allowed_hosts=allowed_hosts)
    return app


# The page runs only its own inline script and style, and talks only to this server.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


def _json(body: dict[str, Any]):
    from fastapi.responses import JSONResponse

    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _reviewer(name: str) -> str:
    if not name:
        raise ApiError(400, "say who is rating: ?reviewer=NAME (the page asks for a name)")
    try:
        return check_reviewer(name)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def rating_of(request: RateRequest, item: Item, reviewer: str) -> Rating:
    """The page's click (left/right as shown) as a rating of a and b."""
    right = "b" if item.left == "a" else "a"
    preference = {"left": item.left, "right": right}.get(request.choice, request.choice)
    scores = {item.left: request.score_left, right: request.score_right}
    return Rating.model_validate(
        {
            "row": item.row,
            "a": item.a,
            "b": item.b,
            "preference": preference,
            "reviewer": reviewer,
            "score_a": scores["a"],
            "score_b": scores["b"],
            "comment": (request.comment or "").strip() or None,
            "left": item.left,
            "source": "page",
        }
    )


def item_view(results: CompareResults, item: Item, seed: int, salt: str = "") -> dict[str, Any]:
    """What the page shows of an item: no contender's name, only left and right."""
    left, right = (item.a, item.b) if item.left == "a" else (item.b, item.a)
    rows = {name: results.contender(name).predictions[item.row] for name in (left, right)}
    first: PredictionRow = rows[left]
    shown_left, shown_right = _passages(rows[left]), _passages(rows[right])
    same = shown_left == shown_right
    turns, earlier = _history(results.contender(left).predictions, first)
    return {
        "id": item.token(seed, salt),
        "row": item.row,
        "line": first.line,
        "kind": results.task.kind,
        "task": results.task.name,
        "input": first.input,
        "turns": turns,
        "earlier_missing": earlier,
        "turn": first.turn,
        "reference": first.expected,
        "passages": shown_left if same else None,
        "left": {"answer": rows[left].predicted, "passages": None if same else shown_left},
        "right": {"answer": rows[right].predicted, "passages": None if same else shown_right},
    }


def _history(predictions: list[PredictionRow], row: PredictionRow) -> tuple[list[dict[str, str]] | None, bool]:
    """A conversation's turns before `row`'s answer, rebuilt as report.html rebuilds them (each row's input holds its
    recent turns; the earlier tested turns' real answers fill in the rest), and whether turns before the first shown
    may be missing. (None, False) for a row that is not a turn of a conversation."""
    from adaptlab.report.tables import rebuilt_conversation

    if row.conversation is None or row.turn is None:
        return None, False
    same = {
        p.turn: {"input": p.input, "expected": p.expected}
        for p in predictions
        if p.conversation == row.conversation and p.turn is not None and p.turn <= row.turn
    }
    said, cut_before = rebuilt_conversation(same, sorted(same))
    turns = [{"role": role, "text": text} for pos, (role, text) in sorted(said.items()) if pos < row.turn]
    return turns, cut_before


def _passages(row: PredictionRow) -> list[dict[str, str]] | None:
    """The passages a contender was given, as source and text (scores left out: they differ by retriever)."""
    if not row.passages:
        return None
    return [{"source": str(p.get("source", "")), "text": str(p.get("text", ""))} for p in row.passages]
