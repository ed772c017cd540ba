"""Demo agents of the demo prefecture: one per kind of work, with accented names."""

from __future__ import annotations

from dataclasses import dataclass

DEMO_PASSWORD = "estafette-demo"


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    roles: tuple[str, ...]
    department: str
    is_head: bool = False
    secondary_departments: tuple[str, ...] = ()

    @property
    def email(self) -> str:
        return f"{self.username}@demo-prefecture.gouv.fr"


DEMO_USERS = (
    DemoUser("admin", "Anne", "Administratrice", ("administrator",), "SG-SIC"),
    DemoUser("courrier", "Camille", "Durand", ("mail_clerk",), "SG-BC"),
    DemoUser("sejour", "Zoé", "N'Diaye", ("agent",), "DMI-SSE-BPT"),
    DemoUser("renouvellement", "Gaël", "Le Bihan", ("agent",), "DMI-SSE-BRT"),
    DemoUser("chef.sejour", "François", "Lefèvre-Giraud", ("manager",), "DMI-SSE", is_head=True),
    DemoUser("naturalisation", "Hélène", "Marchal", ("agent",), "DMI-SN"),
    DemoUser("cabinet", "Bérénice", "Œhmichen", ("agent",), "CAB-BRE"),
    DemoUser("directeur.cabinet", "Jérôme", "Delacroix", ("manager",), "CAB", is_head=True),
    DemoUser("subventions", "Inès", "Benali", ("agent",), "DCPPAT-BSUB"),
    DemoUser("manifestations", "Théo", "Garnier", ("agent",), "DCL-BAMP"),
    DemoUser("legalite", "Maëlle", "Roussel", ("agent",), "DCL-BCL"),
    DemoUser("secretaire.general", "Éric", "Vasseur", ("manager",), "SG", is_head=True),
)
