"""Baskets (bannettes): the declared, structured queries of mail lists."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from flask import g, has_request_context
from sqlalchemy import Select, and_, false, func, select
from sqlalchemy.sql.elements import ColumnElement

from app.configuration.loader import Configuration
from app.configuration.specs import BasketSpec
from app.core.errors import NotFound
from app.extensions import db
from app.mail.models import Mail
from app.mail.visibility import visible_mail_clause
from app.organisation.context import UserContext


@dataclass
class BasketPage:
    basket: BasketSpec
    items: list[Mail]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))


def _scope_clause(basket: BasketSpec, user: UserContext) -> ColumnElement[bool]:
    if basket.scope == "my_departments_tree":
        if not user.scope_department_ids:
            return false()
        return Mail.handling_department_id.in_(sorted(user.scope_department_ids))
    if basket.scope == "my_primary_department":
        if user.primary_department_id is None:
            return false()
        return Mail.handling_department_id == user.primary_department_id
    if basket.scope == "assigned_to_me":
        return Mail.assignee_id == user.user_id
    return Mail.created_by_id == user.user_id


def basket_condition(basket: BasketSpec, user: UserContext) -> ColumnElement[bool]:
    """Return the basket's filter, always combined with the visibility rule."""
    return and_(
        _scope_clause(basket, user),
        Mail.status.in_(basket.statuses),
        visible_mail_clause(user),
    )


def _ordered(statement: Select, basket: BasketSpec) -> Select:
    if basket.sort == "due_date":
        return statement.order_by(Mail.due_date.asc().nulls_last(), Mail.id.asc())
    if basket.sort == "arrival_date":
        return statement.order_by(Mail.arrival_date.asc(), Mail.id.asc())
    if basket.sort == "-arrival_date":
        return statement.order_by(Mail.arrival_date.desc(), Mail.id.desc())
    return statement.order_by(Mail.chrono_year.desc(), Mail.chrono_number.desc())


def get_basket(configuration: Configuration, basket_id: str) -> BasketSpec:
    basket = configuration.baskets.get(basket_id)
    if basket is None:
        raise NotFound()
    return basket


def basket_page(
    user: UserContext, configuration: Configuration, basket_id: str, page: int, page_size: int
) -> BasketPage:
    basket = get_basket(configuration, basket_id)
    condition = basket_condition(basket, user)
    total = count_basket(user, basket)
    page = max(1, page)
    statement = _ordered(select(Mail).where(condition), basket).limit(page_size).offset((page - 1) * page_size)
    items = list(db.session.execute(statement).scalars())
    return BasketPage(basket, items, total, page, page_size)


def count_basket(user: UserContext, basket: BasketSpec) -> int:
    statement = select(func.count()).select_from(Mail).where(basket_condition(basket, user))
    return int(db.session.execute(statement).scalar_one())


def basket_counts(user: UserContext, configuration: Configuration) -> list[tuple[BasketSpec, int]]:
    """Return every basket with its count for ``user``, in menu order, once per request."""
    cached = getattr(g, "estafette_basket_counts", None) if has_request_context() else None
    if cached is not None:
        return cached
    baskets = sorted(configuration.baskets.values(), key=lambda item: (item.order, item.id))
    counts = [(basket, count_basket(user, basket)) for basket in baskets]
    if has_request_context():
        g.estafette_basket_counts = counts
    return counts


@dataclass
class RegisterFilter:
    """Filters of the register list; dates are legal dates, compared as dates."""

    mail_type: str | None = None
    category: str | None = None
    arrival_from: date | None = None
    arrival_to: date | None = None


def register_page(user: UserContext, filters: RegisterFilter, page: int, page_size: int) -> tuple[list[Mail], int]:
    """Return one page of the visible register, newest number first, and the total count."""
    conditions = [visible_mail_clause(user)]
    if filters.mail_type:
        conditions.append(Mail.mail_type == filters.mail_type)
    if filters.category:
        conditions.append(Mail.category == filters.category)
    if filters.arrival_from:
        conditions.append(Mail.arrival_date >= filters.arrival_from)
    if filters.arrival_to:
        conditions.append(Mail.arrival_date <= filters.arrival_to)
    condition = and_(*conditions)
    total = int(db.session.execute(select(func.count()).select_from(Mail).where(condition)).scalar_one())
    statement = (
        select(Mail).where(condition)
        .order_by(Mail.arrival_date.desc(), Mail.id.desc())
        .limit(page_size).offset((max(1, page) - 1) * page_size)
    )
    return list(db.session.execute(statement).scalars()), total
