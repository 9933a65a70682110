"""The review web application (Flask, Jinja templates): flagged events, their pictures, labels, models.

Pages are rendered on the server and figures are PNGs drawn by matplotlib behind their own URLs, so
a page is one fast query and the slower pictures (an anomaly map scores the image again) load after.

Reading is open to whoever reaches the server, which listens on loopback unless told otherwise.
Labelling needs the configured token (``[ui] token``): a reviewer enters it once and the signed
session cookie remembers it. Every form carries a CSRF token (Flask-WTF), so another site cannot make
a reviewer's browser post a label. Bad ids, filters and labels are 4xx pages, never a server error.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timezone
from typing import Any

import numpy as np
from flask import Blueprint, Flask, Response, abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.engine import Engine
from werkzeug.exceptions import HTTPException

from anomaly import maps
from anomaly.errors import AnomalyError
from anomaly.store import LABELS
from anomaly.store.queries import label_event
from anomaly.ui import figures, payloads, queries

MAX_ID = 2**63 - 1  # events.id is 64-bit: a larger number is no event, and the driver would refuse it
_LABEL_FILTERS = (*LABELS, "none")
# How long a browser may reuse a picture without asking again. A stored input never changes, nor do its
# map and reconstruction by the model version that scored it; a sensor plot gains the event's later neighbours
# as they arrive until its window is full, and a model's histogram its newest scores, so those are kept a minute.
STORED_SECONDS = 24 * 3600
CHANGING_SECONDS = 60


def create_app(engine: Engine, token: str | None = None) -> Flask:
    """The application over the store at ``engine``; without ``token`` it is read-only."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,
    )
    CSRFProtect(app)
    app.register_blueprint(_routes(engine, token))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[str, int]:
        return render_template("error.html", code=exc.code, message=exc.description), exc.code or 500

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> tuple[str, int]:
        return render_template("error.html", code=400, message=f"Form refused: {exc.description}"), 400

    @app.context_processor
    def reviewer() -> dict[str, Any]:
        return {"can_label": token is not None and session.get("reviewer") is True, "has_token": token is not None}

    return app


def _moment(name: str) -> datetime | None:
    """A time filter from the query string: ISO 8601 (a ``datetime-local`` input's value), UTC if zoneless."""
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        abort(400, f"{name} must be a date and time such as 2026-12-03T10:00, not {value!r}")
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _text(name: str) -> str | None:
    """A text filter; NUL is refused here, since PostgreSQL refuses it in any string (a 500 otherwise)."""
    value = request.args.get(name, "").strip() or None
    if value is not None and "\x00" in value:
        abort(400, f"{name} cannot hold a NUL character")
    return value


def _filters() -> queries.Filters:
    label = request.args.get("label", "").strip() or None
    if label is not None and label not in _LABEL_FILTERS:
        abort(400, f"label must be one of {', '.join(_LABEL_FILTERS)}, not {label!r}")
    since, until = _moment("since"), _moment("until")
    return queries.Filters(
        source=_text("source"),
        model=_text("model"),
        since=since,
        until=until,
        label=label,
    )


def _cursor() -> queries.Cursor | None:
    """The page's start: ``after`` (the last row's received time, ISO) and ``after_id``, or neither."""
    stamp, row_id = request.args.get("after"), request.args.get("after_id")
    if stamp is None and row_id is None:
        return None
    try:
        moment = datetime.fromisoformat(stamp or "")
        number = int(row_id or "")
    except ValueError:
        abort(400, "after and after_id must be a received time and an event id from a page's 'older' link")
    if not 0 <= number <= MAX_ID:
        abort(400, f"after_id {number} is not an event id")
    return queries.Cursor(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc), number)


def _picture(data: bytes, mimetype: str, max_age: int) -> Response:
    """A picture the browser may reuse for ``max_age`` seconds; private, since a reviewer's cookie came with it."""
    response = Response(data, mimetype=mimetype)
    response.cache_control.private = True
    response.cache_control.max_age = max_age
    return response


def _routes(engine: Engine, token: str | None) -> Blueprint:
    pages = Blueprint("pages", __name__)

    def detail(event_id: int) -> queries.Detail:
        found = queries.event_detail(engine, event_id) if event_id <= MAX_ID else None
        if found is None:
            abort(404, f"no event with id {event_id}")
        return found

    @pages.get("/")
    def flagged() -> str:
        filters = _filters()
        rows = queries.flagged(engine, filters, _cursor())
        more = len(rows) > queries.PAGE_SIZE
        rows = rows[: queries.PAGE_SIZE]
        older = None
        if more:
            last = rows[-1].event
            args: dict[str, Any] = {k: v for k, v in request.args.items() if k not in ("after", "after_id") and v}
            older = url_for(".flagged", **args, after=last.received_at.isoformat(), after_id=last.id)
        return render_template(
            "list.html",
            rows=rows,
            filters=filters,
            older=older,
            labels=_LABEL_FILTERS,
            models=queries.model_names(engine),
            args=request.args,
        )

    @pages.get("/events/<int:event_id>")
    def event(event_id: int) -> str:
        found = detail(event_id)
        return render_template(
            "event.html",
            detail=found,
            event=found.event,
            is_image=payloads.is_image(found.content_type),
            has_readings=payloads.readings(found.payload) is not None,
            reconstructs=found.model is not None and payloads.draws_reconstructions(found.model.detector),
            labels=LABELS,
        )

    @pages.get("/events/<int:event_id>/input")
    def event_input(event_id: int) -> Response:
        found = detail(event_id)
        if found.payload is None or not payloads.is_image(found.content_type):
            abort(404, f"event {event_id} has no stored image")
        response = _picture(found.payload, found.content_type or "", STORED_SECONDS)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    def scored_image(event_id: int) -> tuple[queries.Detail, bytes, str]:
        """An image event, its stored image and the folder of the model that scored it; 404 if one is gone."""
        found = detail(event_id)
        if found.payload is None or not payloads.is_image(found.content_type):
            abort(404, f"event {event_id} has no stored image")
        if found.model is None:
            abort(404, f"the model that scored event {event_id} is no longer registered")
        return found, found.payload, found.model.artifact

    @pages.get("/events/<int:event_id>/map.png")
    def event_map(event_id: int) -> Response:
        found, payload, artifact = scored_image(event_id)
        try:
            picture = payloads.image(payload)
            heat, scale = payloads.anomaly_map(artifact, picture)
        except AnomalyError as exc:
            abort(404, f"no anomaly map for event {event_id}: {exc}")
        drawn = maps.picture(
            picture, heat, scale=scale, score=found.event.score, threshold=found.event.threshold, title=""
        )
        return _picture(drawn, "image/png", STORED_SECONDS)

    @pages.get("/events/<int:event_id>/reconstruction.png")
    def event_reconstruction(event_id: int) -> Response:
        _, payload, artifact = scored_image(event_id)
        try:
            drawn = payloads.reconstruction_png(artifact, payloads.image(payload))
        except AnomalyError as exc:
            abort(404, f"no reconstruction for event {event_id}: {exc}")
        if drawn is None:
            abort(404, f"the detector that scored event {event_id} draws no reconstruction")
        return _picture(drawn, "image/png", STORED_SECONDS)

    @pages.get("/events/<int:event_id>/plot.png")
    def event_plot(event_id: int) -> Response:
        found = detail(event_id)
        own = payloads.readings(found.payload)
        if own is None:
            abort(404, f"event {event_id} holds no sensor readings")
        title = found.event.source or "no source"
        if len(own) > 1:
            # A message that carried a whole window: its own rows, scored once, at the window's end.
            steps = list(range(len(own)))
            scores = [float("nan")] * (len(own) - 1) + [found.event.score]
            drawn = figures.series(
                steps, own, scores, found.event.threshold, marked=steps[-1], title=f"{title}: this event's window"
            )
            return _picture(drawn, "image/png", STORED_SECONDS)
        near = queries.neighbours(engine, found.event)
        around = [
            (record, rows[0])
            for record, payload in near
            if (rows := payloads.readings(payload)) is not None and rows.shape == own.shape
        ]
        # Once every later neighbour the plot shows has arrived it can never change (events are not rewritten).
        later = len(near) - 1 - [record.id for record, _ in near].index(found.event.id)
        drawn = figures.series(
            [record.event_time or record.received_at for record, _ in around],
            np.stack([reading for _, reading in around]),
            [record.score for record, _ in around],
            found.event.threshold,
            marked=found.event.event_time or found.event.received_at,
            title=f"{title}: this event and its neighbours",
        )
        return _picture(drawn, "image/png", STORED_SECONDS if later >= queries.NEIGHBOURS_AFTER else CHANGING_SECONDS)

    @pages.post("/events/<int:event_id>/label")
    def label(event_id: int) -> ResponseReturnValue:
        if token is None:
            abort(403, "labelling is off: start `anomaly ui` with [ui] token configured")
        if session.get("reviewer") is not True:
            abort(403, "enter the review token first")
        value = request.form.get("label", "")
        if value not in LABELS:
            abort(400, f"label must be one of {', '.join(LABELS)}, not {value!r}")
        if event_id > MAX_ID:
            abort(404, f"no event with id {event_id}")
        try:
            label_event(event_id, value, engine=engine)
        except AnomalyError as exc:
            abort(404, str(exc))
        flash(f"event {event_id} labelled {value}")
        return redirect(url_for(".event", event_id=event_id))

    @pages.route("/login", methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        if token is None:
            abort(403, "labelling is off: start `anomaly ui` with [ui] token configured")
        if request.method == "POST":
            given = request.form.get("token", "")
            if hmac.compare_digest(given.encode(), token.encode()):
                session["reviewer"] = True
                flash("signed in: labelling is on")
                target = request.args.get("next", "")
                # Only a path on this site: an absolute or scheme-relative URL would be an open redirect.
                return redirect(target if target.startswith("/") and not target.startswith("//") else "/")
            return render_template("login.html", wrong=True), 403
        return render_template("login.html", wrong=False)

    @pages.post("/logout")
    def logout() -> ResponseReturnValue:
        session.pop("reviewer", None)
        return redirect(url_for(".flagged"))

    @pages.get("/models")
    def models() -> str:
        return render_template("models.html", names=queries.model_names(engine))

    def history_of(name: str) -> queries.History:
        """The model's history; 404 for a name never registered nor trained (or unstorable: NUL)."""
        history = queries.model_history(engine, name) if "\x00" not in name else None
        if history is None or not (history.versions or history.runs):
            abort(404, f"no model named {name!r}")
        return history

    @pages.get("/models/<name>")
    def model(name: str) -> str:
        return render_template("model.html", name=name, history=history_of(name))

    @pages.get("/models/<name>/histogram.png")
    def histogram(name: str) -> Response:
        history = history_of(name)
        if not history.versions:
            abort(404, f"model {name!r} has no registered version")
        active = next((v for v in history.versions if v.status == "active"), history.versions[0])
        drawn = figures.histogram(
            {"recent events": history.scores},
            active.threshold,
            title=f"{name}: scores of the newest {len(history.scores)} events (threshold of v{active.version})",
        )
        return _picture(drawn, "image/png", CHANGING_SECONDS)

    return pages
