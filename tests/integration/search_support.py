"""Fixtures of the search tests: the backends under test and a small French register.

The same tests run on the embedded backend (on the test database, SQLite or
PostgreSQL) and on a real OpenSearch node when ESTAFETTE_TEST_OPENSEARCH_URL
names one (`make test` starts it with scripts/opensearch-node.sh).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from app.correspondents.operations import CorrespondentInput
from app.mail.models import Mail
from app.mail.operations import Registration, register_mail, today_in_paris
from tests.conftest import user_context

OPENSEARCH_URL = os.environ.get("ESTAFETTE_TEST_OPENSEARCH_URL", "")
SKIP_OPENSEARCH = pytest.mark.skipif(
    not OPENSEARCH_URL,
    reason="ESTAFETTE_TEST_OPENSEARCH_URL is not set: start a node with scripts/opensearch-node.sh start "
    "and export its URL (make test does both)",
)
BACKENDS = ["embedded", pytest.param("opensearch", marks=SKIP_OPENSEARCH)]
_index_numbers = itertools.count(1)


def make_backend(name: str) -> Any:
    if name == "embedded":
        from app.search.backends.embedded import EmbeddedBackend

        return EmbeddedBackend()
    from app.search.backends.cluster import cluster_backend

    alias = f"estafette-test-{os.getpid()}-{next(_index_numbers)}"
    return cluster_backend("opensearch", OPENSEARCH_URL, alias, timeout=30, refresh=True)


def drop_backend(backend: Any) -> None:
    if backend.name != "opensearch":
        return
    for name in backend.adapter.alias_targets(backend.alias):
        backend.adapter.delete_index(name)


@pytest.fixture(params=BACKENDS)
def search_backend(request: pytest.FixtureRequest, app_context: Any) -> Iterator[Any]:
    backend = make_backend(request.param)
    yield backend
    drop_backend(backend)


def days_ago(days: int) -> date:
    return today_in_paris() - timedelta(days=days)


def person(last_name: str, first_name: str | None = None) -> CorrespondentInput:
    return CorrespondentInput(kind="person", last_name=last_name, first_name=first_name)


def organisation(name: str) -> CorrespondentInput:
    return CorrespondentInput(kind="organisation", organisation=name)


@dataclass
class Letter:
    key: str
    registration: Registration


def _residence(subject: str, who: CorrespondentInput, days: int, kind: str = "first_request", **extra: Any) -> Registration:
    return Registration(mail_type="residence_permit_request", subject=subject, arrival_date=days_ago(days),
                        fields={"foreign_national_number": "7501234567", "permit_kind": kind}, correspondent=who, **extra)


def _grant(subject: str, who: CorrespondentInput, days: int) -> Registration:
    return Registration(mail_type="grant_request", subject=subject, arrival_date=days_ago(days),
                        fields={"amount_requested": Decimal("1500.00")}, correspondent=who)


def _complaint(subject: str, who: CorrespondentInput, days: int, **extra: Any) -> Registration:
    return Registration(mail_type="public_complaint", subject=subject, arrival_date=days_ago(days), correspondent=who, **extra)


def _event(subject: str, who: CorrespondentInput, days: int) -> Registration:
    return Registration(mail_type="event_authorisation_request", subject=subject, arrival_date=days_ago(days),
                        fields={"event_date": (today_in_paris() + timedelta(days=40)).isoformat()}, correspondent=who)


CORPUS = [
    Letter("premier_titre", _residence("Demande de premier titre de séjour", person("Lefèvre-Giraud", "Hélène"), 10)),
    Letter("renouvellement", _residence("Renouvellement des titres de séjour étudiants", person("Dupré", "Jérôme"), 9, "renewal")),
    Letter("naturalisation", Registration(mail_type="naturalisation_request", subject="Naturalisation de M. Rachid Œhmichen",
                                          arrival_date=days_ago(8), correspondent=person("Œhmichen", "Rachid"))),
    Letter("coeur_de_ville", _grant("Cœur de ville – ŒUVRE SOCIALE", organisation("Sœurs de la Charité de Saint-Étienne"), 7)),
    Letter("saint_denis_grant", _grant("Subvention pour l’association des œuvres de Saint-Denis", organisation("Association Solidarité Plaine"), 6)),
    Letter("arrete", _complaint("Réclamation concernant l’arrêté préfectoral n° 2026-114", person("Bénédicte", "Noël"), 5)),
    Letter("saint_denis_event", _event("Manifestation des agriculteurs à Saint-Denis", organisation("FDSEA"), 4)),
    Letter("saint_ouen", _complaint("Courrier de M. Denis, maire de Saint-Ouen", person("Denis", "Paul"), 3)),
    Letter("reference", Registration(mail_type="administrative_document_request",
                                     subject="Demande d’accès aux documents – référence AR/2026-001",
                                     arrival_date=days_ago(2), correspondent=person("Garnier", "Anaïs"),
                                     fields={"document_requested": "Copie du registre des délibérations de 11/2025"})),
    Letter("buvette", _event("Demandes d'autorisation de buvettes temporaires", organisation("Comité des fêtes de Notre-Dame-d’Or"), 1)),
    Letter("elections", _complaint("Élections municipales : contestation des résultats", person("Nguyen", "Thi"), 0)),
    Letter("jusqu_a", _complaint("Fermeture jusqu’à nouvel ordre de l’aire d’accueil", person("Roussel", "Maëlle"), 0)),
]


def register_corpus(letters: list[Letter] | None = None) -> dict[str, Mail]:
    """Register the letters as the mail room agent and return the mails by key."""
    clerk = user_context("courrier")
    return {letter.key: register_mail(clerk, letter.registration) for letter in (letters or CORPUS)}


def index_all(backend: Any) -> None:
    from app.search.indexer import drain

    result = drain(backend)
    assert not result.failed, "the search backend rejected the documents"
