"""Login checks shared by every view."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import redirect, request, url_for
from flask_login import current_user

from app.core.errors import PermissionDenied
from app.organisation.context import UserContext, current_user_context


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Send anonymous visitors to the login page, then back to where they were going."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user or not current_user.is_authenticated:
            return redirect(url_for("AuthDBView.login", next=request.full_path))
        return view(*args, **kwargs)

    return wrapper


def require_user() -> UserContext:
    context = current_user_context()
    if context is None:
        raise PermissionDenied()
    return context
