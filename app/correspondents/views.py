"""Directory look-up used by the registration form's correspondent picker."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from flask_appbuilder import AppBuilder, BaseView, expose

from app.correspondents.models import Correspondent
from app.correspondents.operations import CorrespondentInput, find_duplicates, search_correspondents
from app.portal.access import login_required, require_user

MIN_QUERY_LENGTH = 2


def _as_json(row: Correspondent) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "display_name": row.display_name,
        "email": row.email,
        "phone": row.phone,
        "city": row.city,
        "postcode": row.postcode,
    }


class CorrespondentApi(BaseView):
    route_base = "/api/correspondents"

    @expose("/search")
    @login_required
    def search(self) -> Any:
        """Return up to 15 entries matching every word typed, accents and case ignored."""
        user = require_user()
        if not user.can("register"):
            return jsonify({"results": []}), 403
        text = (request.args.get("q") or "").strip()[:200]
        if len(text) < MIN_QUERY_LENGTH:
            return jsonify({"results": []})
        return jsonify({"results": [_as_json(row) for row in search_correspondents(text)]})

    @expose("/duplicates")
    @login_required
    def duplicates(self) -> Any:
        """Return probable and possible duplicates of the entry being typed."""
        user = require_user()
        if not user.can("register"):
            return jsonify({"results": []}), 403
        data = CorrespondentInput(
            first_name=request.args.get("first_name") or None,
            last_name=request.args.get("last_name") or None,
            organisation=request.args.get("organisation") or None,
            email=request.args.get("email") or None,
            phone=request.args.get("phone") or None,
        )
        results = [
            {**_as_json(row), "level": match.level, "reasons": match.reasons}
            for row, match in find_duplicates(data)[:10]
        ]
        return jsonify({"results": results})


def register(app: Flask, appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(CorrespondentApi())
