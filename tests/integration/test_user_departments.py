"""The administrator chooses the departments of an account, without which the account is shown no mail."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import delete, select

from app.extensions import db
from app.mail.operations import register_mail
from app.organisation.models import Department, UserDepartment
from tests.conftest import csrf_token, login, user_context
from tests.integration.test_routing import SAMPLES, _registration

PASSWORD = "mot-de-passe-assez-long"


@pytest.fixture()
def new_agent(app) -> Iterator[int]:
    """An agent account as an administrator creates it: a role, no department."""
    with app.app_context():
        security = app.appbuilder.sm
        user = security.add_user("nouvel.agent", "Élodie", "Nouvel", "elodie.nouvel@example.org",
                                 [security.find_role("agent")], password=PASSWORD)
        user_id = user.id
    yield user_id
    with app.app_context():
        _delete_user(user_id)


def _delete_user(user_id: int) -> None:
    db.session.execute(delete(UserDepartment).where(UserDepartment.user_id == user_id))
    # Through the ORM, which removes the user's roles with it.
    db.session.delete(db.session.get(User, user_id))
    db.session.commit()


def _departments(app, user_id: int) -> set[tuple[str, bool, bool]]:
    with app.app_context():
        return set(db.session.execute(
            select(Department.code, UserDepartment.is_primary, UserDepartment.is_head)
            .join(Department, Department.id == UserDepartment.department_id)
            .where(UserDepartment.user_id == user_id)
        ).tuples())


def test_account_without_department_is_listed_first_and_warned(app, client_as, new_agent):
    page = client_as("admin").get("/admin/users/departments").get_data(as_text=True)
    warning, _rest = page.split('id="users-departments"', 1)
    assert "1 compte actif n'est rattaché à aucun service" in warning
    assert 'data-user="nouvel.agent"' in warning

    agent = app.test_client()
    login(agent, "nouvel.agent", PASSWORD)
    home = agent.get("/").get_data(as_text=True)
    assert "Votre compte n'est rattaché à aucun service" in home


def test_departments_chosen_show_their_mail(app, client_as, new_agent):
    with app.app_context():
        sample = next(item for item in SAMPLES if item.name == "residence permit renewal")
        chrono = register_mail(user_context("courrier"), _registration(sample)).chrono
    admin = client_as("admin")
    form = admin.get(f"/admin/users/{new_agent}/departments").get_data(as_text=True)

    response = admin.post(f"/admin/users/{new_agent}/departments", data={
        "csrf_token": csrf_token(form), "primary": "DMI-SSE-BRT", "member": ["DMI-SSE-BPT"], "head": ["DMI-SSE-BPT"],
    })

    assert response.status_code == 302
    assert _departments(app, new_agent) == {("DMI-SSE-BRT", True, False), ("DMI-SSE-BPT", False, True)}
    agent = app.test_client()
    login(agent, "nouvel.agent", PASSWORD)
    assert chrono in agent.get("/mail/basket/to_process").get_data(as_text=True)


@pytest.mark.parametrize(("data", "message"), [
    ({"member": ["DMI-SSE-BPT"]}, "Choisissez le service principal"),
    ({"primary": "DMI-SSE-BRT", "head": ["CAB"]}, "ne peut diriger qu&#39;un service dont il est membre : CAB"),
    ({"primary": "INCONNU"}, "Le service INCONNU n&#39;existe pas ou est fermé."),
])
def test_wrong_choice_refused_and_nothing_changed(app, client_as, new_agent, data, message):
    admin = client_as("admin")
    form = admin.get(f"/admin/users/{new_agent}/departments").get_data(as_text=True)

    response = admin.post(f"/admin/users/{new_agent}/departments", data={"csrf_token": csrf_token(form), **data})

    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert _departments(app, new_agent) == set()


def test_only_an_administrator_opens_or_sends_the_pages(app, client_as, new_agent):
    agent = client_as("sejour")
    assert agent.get("/admin/users/departments").status_code == 403
    assert agent.get(f"/admin/users/{new_agent}/departments").status_code == 403
    token = csrf_token(agent.get("/absences/").get_data(as_text=True))
    response = agent.post(f"/admin/users/{new_agent}/departments", data={"csrf_token": token, "primary": "CAB"})
    assert response.status_code == 403
    assert _departments(app, new_agent) == set()

    admin = client_as("admin")
    assert admin.post(f"/admin/users/{new_agent}/departments", data={"primary": "CAB"}).status_code == 400
    assert _departments(app, new_agent) == set()


def test_new_account_links_to_departments(app, client_as):
    admin = client_as("admin")
    form = admin.get("/users/add").get_data(as_text=True)
    with app.app_context():
        role_id = app.appbuilder.sm.find_role("agent").id
    response = admin.post("/users/add", data={
        "csrf_token": csrf_token(form), "first_name": "Anaïs", "last_name": "Lefèvre", "username": "anais.lefevre",
        "email": "anais.lefevre@example.org", "roles": [str(role_id)], "active": "y",
        "password": PASSWORD, "conf_password": PASSWORD,
    }, follow_redirects=True)
    try:
        page = response.get_data(as_text=True)
        assert "Anaïs Lefèvre ne voit aucun courrier tant qu'aucun service ne lui est attribué" in page
        with app.app_context():
            user_id = db.session.execute(select(User.id).where(User.username == "anais.lefevre")).scalar_one()
        assert re.search(rf'href="/admin/users/{user_id}/departments"', page)
    finally:
        with app.app_context():
            created = db.session.execute(select(User.id).where(User.username == "anais.lefevre")).scalar()
            if created is not None:
                _delete_user(created)
