"""Generate realistic French demo mail and correspondents for Estafette.

Every value is drawn from the ``random.Random`` given by the caller (or built
from the seed given to ``iter_mails``), so a seed always produces the same
data. The module needs no Flask application.

The data is French because a prefecture's mail is. E-mail addresses use the
``.example`` top-level domain, which RFC 2606 reserves, so demo data can never
reach a real mailbox.
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from decimal import Decimal

# ---------------------------------------------------------------------------
# French formatting
# ---------------------------------------------------------------------------

FRENCH_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)


def format_french_date(value: date) -> str:
    """Format a date as French text, e.g. "1er mars 2026" or "4 décembre 2026"."""
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {FRENCH_MONTHS[value.month - 1]} {value.year}"


def format_euros(amount: Decimal) -> str:
    """Format an amount the French way, e.g. Decimal("12500.5") -> "12 500,50 €"."""
    english = f"{amount:,.2f}"
    return english.replace(",", " ").replace(".", ",") + " €"


def with_de(noun_phrase: str) -> str:
    """Prefix "de", elided to "d'" before a vowel: "de Créteil", "d'Évry"."""
    first_letter = _strip_accents(noun_phrase[:1]).lower()
    if first_letter in "aeiouy":
        return f"d'{noun_phrase}"
    return f"de {noun_phrase}"


def _strip_accents(text: str) -> str:
    # NFKD splits "é" into "e" plus a combining accent. The ligatures œ and æ
    # have no decomposition, so they are replaced first.
    text = text.replace("œ", "oe").replace("Œ", "Oe").replace("æ", "ae").replace("Æ", "Ae")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _email_local_part(text: str) -> str:
    """Lowercase ASCII form of a name: "N'Diaye" -> "ndiaye", "Le Bihan" -> "lebihan"."""
    ascii_text = _strip_accents(text).lower()
    return "".join(char for char in ascii_text if char.isalnum() or char == "-")


def _slug(text: str, max_length: int = 63) -> str:
    """Hyphenated ASCII form for domain names: "Comité des fêtes" -> "comite-des-fetes".

    Whole words are dropped from the end to stay within max_length, which
    defaults to the maximum length of a DNS label.
    """
    ascii_text = _strip_accents(text).lower()
    words = "".join(char if char.isalnum() else " " for char in ascii_text).split()
    slug = "-".join(words)
    while len(slug) > max_length and len(words) > 1:
        words.pop()
        slug = "-".join(words)
    return slug[:max_length]


# ---------------------------------------------------------------------------
# Pools: people, places, organisations
# ---------------------------------------------------------------------------

FEMALE_FIRST_NAMES = (
    "Hélène", "Zoé", "Chloé", "Léa", "Manon", "Camille", "Inès", "Clémence",
    "Anaïs", "Maëlle", "Noémie", "Éloïse", "Joséphine", "Marie-Thérèse",
    "Anne-Sophie", "Françoise", "Geneviève", "Aurélie", "Céline", "Mélanie",
    "Sylvie", "Nathalie", "Agnès", "Bérénice", "Fatoumata", "Aïcha", "Yasmina",
    "Nadia", "Linh", "Sofia", "Ophélie", "Capucine", "Solène", "Léonie",
    "Jeanne", "Claire", "Béatrice", "Danièle", "Maïté", "Gwenaëlle",
)

MALE_FIRST_NAMES = (
    "François", "Gaël", "Jérôme", "Stéphane", "Benoît", "Loïc", "Noël",
    "Raphaël", "Joël", "Hervé", "Thierry", "Jean-Baptiste", "Pierre-Henri",
    "Marc-Antoine", "Mathéo", "Théo", "Étienne", "Gérard", "André", "René",
    "Cédric", "Frédéric", "Sébastien", "Nicolas", "Julien", "Mamadou", "Karim",
    "Youssef", "Mehdi", "Moussa", "Ibrahima", "Dimitri", "Yann", "Killian",
    "Hugo", "Émile", "Léon", "Bruno", "Anh", "Grégoire",
)

SURNAMES = (
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit",
    "Durand", "Leroy", "Moreau", "Simon", "Laurent", "Lefèvre", "Michel",
    "Garcia", "Fournier", "Lambert", "Rousseau", "Girard", "Bonnet", "Dupont",
    "Mercier", "Blanchard", "Guérin", "Boyer", "Chevalier", "François",
    "Legrand", "Gauthier", "Perrin", "Rivière", "Noël", "Lefèvre-Giraud",
    "Dubois-Martin", "N'Diaye", "Le Bihan", "Le Goff", "Œhmichen", "Nguyen",
    "Traoré", "Diallo", "Benali", "Haddad", "Da Silva", "Dos Santos",
    "Kowalski", "Hébert", "Bérenger", "Ménard", "Lemaître", "Crépin",
    "Séverin", "Brûlé", "de Kervéguen", "d'Arvieux", "Coëffic", "Pérez",
    "Castelnau-Dufrêne", "Benoît", "Le Cœur",
)

# Postcodes and cities are real. Île-de-France is drawn more often because
# the default prefecture is the region's.
ILE_DE_FRANCE_PLACES = (
    ("75005", "Paris"), ("75011", "Paris"), ("75013", "Paris"),
    ("75015", "Paris"), ("75018", "Paris"), ("75020", "Paris"),
    ("93200", "Saint-Denis"), ("93100", "Montreuil"), ("93000", "Bobigny"),
    ("93140", "Bondy"), ("93300", "Aubervilliers"), ("93160", "Noisy-le-Grand"),
    ("94000", "Créteil"), ("94200", "Ivry-sur-Seine"), ("94300", "Vincennes"),
    ("94400", "Vitry-sur-Seine"), ("94130", "Nogent-sur-Marne"),
    ("92100", "Boulogne-Billancourt"), ("92000", "Nanterre"),
    ("92130", "Issy-les-Moulineaux"), ("92600", "Asnières-sur-Seine"),
    ("92400", "Courbevoie"), ("78000", "Versailles"),
    ("78100", "Saint-Germain-en-Laye"), ("78200", "Mantes-la-Jolie"),
    ("78990", "Élancourt"), ("91000", "Évry-Courcouronnes"), ("91300", "Massy"),
    ("91120", "Palaiseau"), ("91150", "Étampes"), ("95000", "Cergy"),
    ("95100", "Argenteuil"), ("95200", "Sarcelles"), ("95300", "Pontoise"),
    ("77000", "Melun"), ("77100", "Meaux"), ("77300", "Fontainebleau"),
    ("77400", "Lagny-sur-Marne"),
)

OTHER_PLACES = (
    ("76800", "Saint-Étienne-du-Rouvray"), ("42000", "Saint-Étienne"),
    ("69003", "Lyon"), ("13001", "Marseille"), ("29000", "Quimper"),
    ("29200", "Brest"), ("67000", "Strasbourg"), ("59000", "Lille"),
    ("33000", "Bordeaux"), ("35000", "Rennes"), ("44000", "Nantes"),
    ("31000", "Toulouse"), ("21000", "Dijon"), ("64100", "Bayonne"),
    ("06000", "Nice"), ("45000", "Orléans"), ("80000", "Amiens"),
    ("97400", "Saint-Denis"), ("60200", "Compiègne"), ("28000", "Chartres"),
    ("51100", "Reims"), ("74000", "Annecy"), ("87000", "Limoges"),
    ("63000", "Clermont-Ferrand"), ("14000", "Caen"), ("30000", "Nîmes"),
)

ILE_DE_FRANCE_SHARE = 0.8

STREET_TYPES = (
    "rue", "rue", "rue", "rue", "avenue", "avenue", "boulevard", "place",
    "allée", "impasse", "chemin", "quai", "square", "cours",
)

STREET_NAMES = (
    "de la République", "Jean-Jaurès", "Victor-Hugo", "du Général-Leclerc",
    "des Écoles", "Émile-Zola", "de l'Église", "Gambetta", "Pasteur",
    "Aristide-Briand", "des Lilas", "du Moulin", "Louise-Michel", "Simone-Veil",
    "de la Gare", "du Château-d'Eau", "Paul-Éluard", "des Peupliers",
    "du 8-Mai-1945", "du 11-Novembre-1918", "de Verdun", "Jules-Ferry",
    "Voltaire", "de la Paix", "des Acacias", "Henri-Barbusse",
    "du Maréchal-Foch", "Pierre-et-Marie-Curie", "Jean-Moulin", "Gabriel-Péri",
    "des Tilleuls", "du Port", "Saint-Éloi", "Lucie-Aubrac", "Olympe-de-Gouges",
    "Gisèle-Halimi", "des Châtaigniers", "de l'Abbé-Grégoire",
)

ADDRESS_COMPLEMENTS = (
    "Bâtiment B", "Bât. C, esc. 2", "Résidence Les Érables", "Appartement 41",
    "Chez M. et Mme Lefèvre",
)

# French département names with the article used after "de" (Île-de-France
# only) and their number of legislative constituencies since 2012.
ILE_DE_FRANCE_DEPARTMENTS = (
    ("de Paris", 18), ("de Seine-et-Marne", 11), ("des Yvelines", 12),
    ("de l'Essonne", 10), ("des Hauts-de-Seine", 13),
    ("de la Seine-Saint-Denis", 12), ("du Val-de-Marne", 11),
    ("du Val-d'Oise", 10),
)

PERSONAL_EMAIL_DOMAINS = (
    "orange.example", "laposte.example", "free.example", "sfr.example",
    "gmail.example", "outlook.example", "wanadoo.example",
)

# NOTE: these prefixes are meant to be the blocks that the French numbering
# plan (ARCEP) reserves for fiction, but the list was not checked against the
# plan's current text.
FICTION_PHONE_PREFIXES = (
    "01 99 00", "02 61 91", "03 53 01", "04 65 71", "05 36 49", "06 39 98",
)

ASSOCIATION_NAME_TEMPLATES = (
    "Association sportive {de_city}",
    "Comité des fêtes {de_city}",
    "Les Amis du patrimoine {de_city}",
    "Union des commerçants {de_city}",
    "Harmonie municipale {de_city}",
    "Club de l'âge d'or {de_city}",
    "Compagnie théâtrale « Les Tréteaux {de_city} »",
    "Association des locataires de la résidence des Tilleuls",
    "Collectif des parents d'élèves de l'école Jules-Ferry",
    "Association d'aide aux migrants « Terre d'accueil »",
    "Sœurs de la Charité de Saint-Étienne",
    "Amicale des sapeurs-pompiers {de_city}",
    "Association « Cœur de quartier »",
    "Jardins partagés {de_city}",
    "Association culturelle franco-malienne {de_city}",
)

COMPANY_FORMS = ("SARL", "SAS", "SAS", "EURL", "SA")
COMPANY_ACTIVITIES = (
    "Boulangerie", "Transports", "Bâtiment", "Sécurité privée", "Taxis",
    "Traiteur", "Nettoyage industriel", "Événementiel", "Garage", "Ambulances",
    "Pompes funèbres", "Pâtisserie",
)

# Public bodies with the postcode and city of their seat.
PUBLIC_BODIES = (
    ("Agence régionale de santé d'Île-de-France", "93200", "Saint-Denis"),
    ("Rectorat de l'académie de Créteil", "94000", "Créteil"),
    ("Rectorat de l'académie de Versailles", "78000", "Versailles"),
    ("Rectorat de l'académie de Paris", "75015", "Paris"),
    ("Préfecture de la Seine-Saint-Denis", "93000", "Bobigny"),
    ("Préfecture du Val-de-Marne", "94000", "Créteil"),
    ("Préfecture des Hauts-de-Seine", "92000", "Nanterre"),
    ("Préfecture de l'Essonne", "91000", "Évry-Courcouronnes"),
    ("Préfecture des Yvelines", "78000", "Versailles"),
    ("Préfecture du Val-d'Oise", "95000", "Cergy"),
    ("Préfecture de Seine-et-Marne", "77000", "Melun"),
    ("Caisse d'allocations familiales de la Seine-Saint-Denis", "93000", "Bobigny"),
    ("Tribunal administratif de Montreuil", "93100", "Montreuil"),
    ("Office français de l'immigration et de l'intégration", "75011", "Paris"),
)

# The two chambers of Parliament, with their street address.
CHAMBERS = {
    "assemblee_nationale": ("Assemblée nationale", "126 rue de l'Université", "75007", "Paris"),
    "senat": ("Sénat", "15 rue de Vaugirard", "75006", "Paris"),
}


# ---------------------------------------------------------------------------
# Correspondents
# ---------------------------------------------------------------------------

def _draw_place(rng: random.Random) -> tuple[str, str]:
    if rng.random() < ILE_DE_FRANCE_SHARE:
        return rng.choice(ILE_DE_FRANCE_PLACES)
    return rng.choice(OTHER_PLACES)


def _draw_street_address(rng: random.Random) -> str:
    number = str(rng.randint(1, 180))
    suffix_draw = rng.random()
    if suffix_draw < 0.05:
        number += " bis"
    elif suffix_draw < 0.07:
        number += " ter"
    address = f"{number} {rng.choice(STREET_TYPES)} {rng.choice(STREET_NAMES)}"
    if rng.random() < 0.1:
        address = f"{rng.choice(ADDRESS_COMPLEMENTS)}, {address}"
    return address


def _draw_phone(rng: random.Random) -> str:
    prefix = rng.choice(FICTION_PHONE_PREFIXES)
    return f"{prefix} {rng.randint(0, 99):02d} {rng.randint(0, 99):02d}"


def _draw_person_name(rng: random.Random) -> tuple[str, str, str]:
    """Draw (civility, first name, last name)."""
    if rng.random() < 0.5:
        return "Mme", rng.choice(FEMALE_FIRST_NAMES), rng.choice(SURNAMES)
    return "M.", rng.choice(MALE_FIRST_NAMES), rng.choice(SURNAMES)


def _draw_personal_email(rng: random.Random, first_name: str, last_name: str) -> str:
    first = _email_local_part(first_name)
    last = _email_local_part(last_name)
    pattern = rng.randrange(4)
    if pattern == 0:
        local_part = f"{first}.{last}"
    elif pattern == 1:
        local_part = f"{first[0]}.{last}"
    elif pattern == 2:
        local_part = f"{first}{last}{rng.randint(1, 99)}"
    else:
        local_part = f"{last}.{first}"
    return f"{local_part}@{rng.choice(PERSONAL_EMAIL_DOMAINS)}"


def _empty_correspondent(kind: str) -> dict:
    return {
        "kind": kind,
        "civility": None,
        "first_name": None,
        "last_name": None,
        "organisation": None,
        "email": None,
        "phone": None,
        "address": None,
        "postcode": None,
        "city": None,
    }


def generate_person(rng: random.Random) -> dict:
    """Generate a private person writing from a home address."""
    correspondent = _empty_correspondent("person")
    civility, first_name, last_name = _draw_person_name(rng)
    postcode, city = _draw_place(rng)
    correspondent.update(
        civility=civility,
        first_name=first_name,
        last_name=last_name,
        address=_draw_street_address(rng),
        postcode=postcode,
        city=city,
    )
    if rng.random() < 0.7:
        correspondent["email"] = _draw_personal_email(rng, first_name, last_name)
    if rng.random() < 0.5:
        correspondent["phone"] = _draw_phone(rng)
    return correspondent


def _commune_name(postcode: str, city: str) -> str:
    if city == "Paris":
        arrondissement = int(postcode[-2:])
        ordinal = "1er" if arrondissement == 1 else f"{arrondissement}e"
        return f"Mairie du {ordinal} arrondissement de Paris"
    return f"Mairie {with_de(city)}"


def generate_organisation(rng: random.Random, organisation_kind: str | None = None) -> dict:
    """Generate an organisation correspondent.

    ``organisation_kind`` is "commune", "association", "company" or
    "public_body"; None draws one. The civility and name fields hold a
    contact person, or None when the letter is signed by the organisation.
    """
    if organisation_kind is None:
        organisation_kind = rng.choices(
            ("commune", "association", "company", "public_body"), weights=(3, 4, 3, 2)
        )[0]

    correspondent = _empty_correspondent("organisation")
    postcode, city = _draw_place(rng)
    address = _draw_street_address(rng)

    if organisation_kind == "commune":
        name = _commune_name(postcode, city)
        address = "Hôtel de ville, place de l'Hôtel-de-Ville"
        email_local_part, domain = "courrier", f"ville-{_slug(city)}.example"
    elif organisation_kind == "association":
        name = rng.choice(ASSOCIATION_NAME_TEMPLATES).format(de_city=with_de(city))
        email_local_part, domain = "contact", f"{_slug(name, 40)}.example"
    elif organisation_kind == "company":
        name = f"{rng.choice(COMPANY_FORMS)} {rng.choice(COMPANY_ACTIVITIES)} {rng.choice(SURNAMES)}"
        if rng.random() < 0.2:
            name += " et Fils"
        email_local_part, domain = rng.choice(("contact", "direction", "accueil")), f"{_slug(name)}.example"
    elif organisation_kind == "public_body":
        name, postcode, city = rng.choice(PUBLIC_BODIES)
        email_local_part, domain = "courrier", f"{_slug(name, 40)}.gouv.example"
    else:
        raise ValueError(
            f"invalid organisation_kind {organisation_kind!r}; "
            "expected 'commune', 'association', 'company', 'public_body' or None"
        )

    correspondent.update(organisation=name, address=address, postcode=postcode, city=city)
    if rng.random() < 0.6:
        civility, first_name, last_name = _draw_person_name(rng)
        correspondent.update(civility=civility, first_name=first_name, last_name=last_name)
    if rng.random() < 0.9:
        correspondent["email"] = f"{email_local_part}@{domain}"
    if rng.random() < 0.8:
        correspondent["phone"] = _draw_phone(rng)
    return correspondent


def generate_parliamentarian(rng: random.Random) -> tuple[dict, str, str]:
    """Generate a member of Parliament for Île-de-France.

    Returns (correspondent, title, chamber): the title reads like
    "Mme Claire Dubois-Martin, députée de la 3e circonscription de l'Essonne"
    and the chamber is "assemblee_nationale" or "senat".
    """
    civility, first_name, last_name = _draw_person_name(rng)
    department, constituency_count = rng.choice(ILE_DE_FRANCE_DEPARTMENTS)
    is_woman = civility == "Mme"

    if rng.random() < 0.7:
        chamber = "assemblee_nationale"
        constituency = rng.randint(1, constituency_count)
        # "circonscription" is feminine, so the first one is "1re".
        ordinal = "1re" if constituency == 1 else f"{constituency}e"
        role = "députée" if is_woman else "député"
        title = f"{civility} {first_name} {last_name}, {role} de la {ordinal} circonscription {department}"
    else:
        chamber = "senat"
        role = "sénatrice" if is_woman else "sénateur"
        title = f"{civility} {first_name} {last_name}, {role} {department}"

    organisation, address, postcode, city = CHAMBERS[chamber]
    correspondent = _empty_correspondent("person")
    correspondent.update(
        civility=civility,
        first_name=first_name,
        last_name=last_name,
        organisation=organisation,
        email=f"{_email_local_part(first_name)}.{_email_local_part(last_name)}@{_slug(organisation)}.example",
        phone=_draw_phone(rng) if rng.random() < 0.5 else None,
        address=address,
        postcode=postcode,
        city=city,
    )
    return correspondent, title, chamber


def generate_correspondent(rng: random.Random) -> dict:
    """Generate a correspondent: a private person (60 %), an organisation or a member of Parliament.

    The dict has the keys kind ("person" or "organisation"), civility ("M.",
    "Mme" or None), first_name, last_name, organisation, email, phone,
    address, postcode and city. Values that a correspondent lacks are None.
    """
    draw = rng.random()
    if draw < 0.6:
        return generate_person(rng)
    if draw < 0.95:
        return generate_organisation(rng)
    return generate_parliamentarian(rng)[0]


# ---------------------------------------------------------------------------
# Mail: types, fields and wording
# ---------------------------------------------------------------------------

CATEGORIES = ("incoming", "outgoing", "internal")

MAIL_TYPE_CATEGORIES = {
    "residence_permit_request": "incoming",
    "naturalisation_request": "incoming",
    "parliamentary_letter": "incoming",
    "grant_request": "incoming",
    "public_complaint": "incoming",
    "administrative_document_request": "incoming",
    "event_authorisation_request": "incoming",
    "outgoing_reply": "outgoing",
    "outgoing_convocation": "outgoing",
    "internal_memo": "internal",
    "internal_note_to_prefect": "internal",
}

# Outgoing mail has no web channel, and its split is an estimate.
CHANNEL_WEIGHTS = {
    "incoming": {"post": 60, "email": 30, "web": 10},
    "outgoing": {"post": 70, "email": 30},
    "internal": {"internal": 1},
}

PRIORITY_WEIGHTS = {"normal": 85, "urgent": 12, "very_urgent": 3}
CONFIDENTIAL_SHARE = 0.03

# Incoming mail is registered 0 to 5 days after the date on the letter.
# Outgoing and internal mail is registered on the day it is dated.
MAX_DELIVERY_DAYS = 5
# Registration dates go back at most this many days, so that letter dates,
# which may precede them by MAX_DELIVERY_DAYS, plus a weekend shift of up to
# 2 days, stay within the last 365 days.
MAX_REGISTRATION_AGE_DAYS = 365 - MAX_DELIVERY_DAYS - 2

PERMIT_KINDS = ("first_request", "renewal", "change_of_status")
PERMIT_KIND_LABELS = {
    "first_request": "première délivrance de titre de séjour",
    "renewal": "renouvellement de titre de séjour",
    "change_of_status": "changement de statut",
}

NATIONALITIES = (
    "algérienne", "marocaine", "tunisienne", "sénégalaise", "malienne",
    "ivoirienne", "camerounaise", "congolaise", "guinéenne", "comorienne",
    "haïtienne", "chinoise", "vietnamienne", "turque", "sri-lankaise",
    "bangladaise", "pakistanaise", "afghane", "ukrainienne", "russe",
    "brésilienne", "indienne", "égyptienne", "géorgienne", "albanaise",
)

DOCUMENT_REQUESTS = (
    "copie de l'arrêté préfectoral n° {year}-{number} du {date}",
    "duplicata du récépissé de déclaration de l'association",
    "extrait du registre des associations",
    "attestation de dépôt de demande de titre de séjour",
    "copie du procès-verbal de la commission communale de sécurité",
    "communication du dossier d'enquête publique relatif au projet de zone d'activités",
    "copie de la décision de refus de séjour notifiée le {date}",
    "attestation de prolongation d'instruction",
)

# Events with their indefinite article, which depends on the noun's gender.
EVENT_KINDS = (
    ("une", "brocante annuelle"), ("une", "course pédestre « Les Foulées »"),
    ("une", "fête de quartier"), ("un", "festival de musique en plein air"),
    ("un", "marché de Noël"), ("un", "carnaval des écoles"),
    ("un", "rassemblement revendicatif"), ("un", "feu d'artifice"),
    ("une", "fête de la Saint-Jean"), ("un", "tournoi de football inter-quartiers"),
)

GRANT_PROJECTS = (
    "Jardins partagés", "Soutien scolaire", "Accès au droit",
    "Sport pour tous", "Chantier éducatif", "Lutte contre l'illettrisme",
    "Prévention de la délinquance", "Ateliers socio-linguistiques",
)

MEMO_TOPICS = (
    "organisation des permanences", "procédure de traitement des courriers parlementaires",
    "délais de réponse aux usagers", "mise à jour des délégations de signature",
    "accueil des demandeurs de titres de séjour", "préparation de la visite ministérielle",
)

# Subject templates per mail type id. The placeholders are the keys built by
# _build_wording_context.
SUBJECT_TEMPLATES = {
    "residence_permit_request": (
        "Demande de {permit_label}",
        "Demande de {permit_label} – {person}",
        "Relance concernant ma demande de {permit_label}",
        "Dossier de {permit_label} : transmission de pièces complémentaires",
        "Demande de rendez-vous pour un dossier de {permit_label}",
    ),
    "naturalisation_request": (
        "Demande d'acquisition de la nationalité française par décret",
        "Suivi de mon dossier de naturalisation",
        "Demande de naturalisation – {person}",
        "Naturalisation : transmission de pièces complémentaires",
        "Demande de réintégration dans la nationalité française",
    ),
    "parliamentary_letter": (
        "Intervention en faveur de {person} – situation administrative",
        "Situation de {person}, demande de titre de séjour",
        "Question relative aux délais de délivrance des titres de séjour",
        "Soutien à la demande de subvention du comité des fêtes {de_city}",
        "Sécurité aux abords du collège Jean-Moulin {de_city}",
    ),
    "grant_request": (
        "Demande de subvention pour l'année {year}",
        "Demande de subvention – projet « {project} »",
        "Dossier de demande de subvention de fonctionnement {year}",
        "Demande de subvention au titre de la politique de la ville – {project}",
    ),
    "public_complaint": (
        "Réclamation concernant les délais de traitement de mon dossier",
        "Nuisances sonores {street}, {city}",
        "Plainte relative à l'accueil au guichet des étrangers",
        "Difficultés pour obtenir un rendez-vous en ligne",
        "Dépôt sauvage de déchets {street} à {city}",
        "Stationnement gênant devant l'école {street}",
    ),
    "administrative_document_request": (
        "Demande {de_document}",
        "Demande de communication de documents administratifs",
        "Demande {de_document} – {person}",
    ),
    "event_authorisation_request": (
        "Demande d'autorisation – {event} {de_city}",
        "Déclaration de manifestation sur la voie publique – {event}",
        "{event_capitalised} du {event_date} : demande d'autorisation",
    ),
    "outgoing_reply": (
        "Réponse à votre courrier du {date}",
        "Suite donnée à votre réclamation du {date}",
        "Accusé de réception de votre demande de subvention",
        "Réponse à votre intervention en faveur de {person}",
        "Votre demande de {permit_label}",
    ),
    "outgoing_convocation": (
        "Convocation à un entretien d'assimilation le {later_date}",
        "Convocation pour la remise de votre titre de séjour",
        "Convocation à la commission départementale de sécurité du {later_date}",
        "Convocation à la cérémonie d'accueil dans la nationalité française",
    ),
    "internal_memo": (
        "Note de service – organisation des permanences de {month}",
        "Note de service – {memo_topic}",
        "Fermeture exceptionnelle de l'accueil du public le {later_date}",
        "Exercice d'évacuation du bâtiment le {later_date}",
    ),
    "internal_note_to_prefect": (
        "Note à l'attention du préfet – point de situation sur les titres de séjour",
        "Note à l'attention du préfet – préparation de la visite ministérielle du {later_date}",
        "Note à l'attention du préfet – bilan des subventions attribuées en {year}",
        "Note à l'attention du préfet – {event} à {city} le {later_date}",
    ),
}

# Used for mail type ids missing from SUBJECT_TEMPLATES.
FALLBACK_SUBJECT_TEMPLATES = {
    "incoming": (
        "Courrier de {person}",
        "Demande d'information",
        "Demande de rendez-vous avec les services de la préfecture",
    ),
    "outgoing": (
        "Réponse à votre courrier du {date}",
        "Transmission de documents",
    ),
    "internal": (
        "Note interne – {memo_topic}",
        "Transmission pour information",
    ),
}

OPENING_TEMPLATES = {
    "residence_permit_request": (
        "J'ai l'honneur de solliciter la {permit_label} auprès de vos services. "
        "De nationalité {nationality}, je réside à {city} depuis plusieurs années.",
        "Je me permets de vous adresser ma demande de {permit_label}, "
        "mon récépissé arrivant à échéance le {later_date}.",
    ),
    "naturalisation_request": (
        "J'ai l'honneur de solliciter l'acquisition de la nationalité française par décret, "
        "conformément aux dispositions du code civil.",
        "Je me permets de vous interroger sur l'état d'avancement de mon dossier de naturalisation, "
        "déposé le {date}.",
    ),
    "parliamentary_letter": (
        "J'ai l'honneur d'appeler votre attention sur la situation de {person}, domicilié(e) à {city}, "
        "qui m'a saisi(e) de ses difficultés.",
        "Plusieurs habitants du département m'ont fait part de leurs inquiétudes, "
        "que je souhaite porter à votre connaissance.",
    ),
    "grant_request": (
        "Notre association sollicite une subvention de {amount} pour son projet « {project} », "
        "qui bénéficiera aux habitants {de_city}.",
        "Vous trouverez ci-joint notre dossier de demande de subvention d'un montant de {amount}, "
        "accompagné du budget prévisionnel pour {year}.",
    ),
    "public_complaint": (
        "Je souhaite porter à votre connaissance une situation qui perdure depuis plusieurs mois "
        "{street}, à {city}.",
        "Malgré plusieurs relances, ma demande déposée le {date} n'a reçu à ce jour aucune réponse.",
    ),
    "administrative_document_request": (
        "En application du code des relations entre le public et l'administration, "
        "je vous prie de bien vouloir me communiquer la pièce suivante : {document}.",
        "Pour la constitution de mon dossier, j'ai l'honneur de solliciter la délivrance "
        "de la pièce suivante : {document}.",
    ),
    "event_authorisation_request": (
        "Nous organisons le {event_date} {an_event} {de_city}, "
        "qui devrait réunir environ {attendance} personnes.",
        "Conformément à la réglementation, nous vous déclarons la tenue {de_an_event} le {event_date}, "
        "pour environ {attendance} participants.",
    ),
    "outgoing_reply": (
        "Par courrier du {date}, vous avez bien voulu appeler mon attention sur votre situation.",
        "J'ai bien reçu votre courrier du {date} et je vous en remercie.",
    ),
    "outgoing_convocation": (
        "Vous êtes invité(e) à vous présenter à la préfecture le {later_date} à 9 h 30, "
        "muni(e) de votre convocation et d'une pièce d'identité.",
    ),
    "internal_memo": (
        "La présente note précise l'organisation retenue pour le mois de {month}.",
        "À compter du {later_date}, les modalités suivantes s'appliquent à l'ensemble des agents du service.",
    ),
    "internal_note_to_prefect": (
        "Vous trouverez ci-dessous un point de situation établi au {date}.",
        "La présente note a pour objet de vous informer des éléments suivants, en vue de votre arbitrage.",
    ),
}

MIDDLE_SENTENCES = {
    "incoming": (
        "Vous trouverez ci-joint l'ensemble des pièces justificatives demandées.",
        "Je reste à la disposition de vos services pour tout renseignement complémentaire.",
        "Je vous serais reconnaissant(e) de bien vouloir examiner ma demande dans les meilleurs délais.",
        "Cette situation me cause un préjudice important, tant personnel que professionnel.",
        "Je joins à ce courrier la copie de mes précédents échanges avec l'administration.",
    ),
    "outgoing": (
        "Après examen attentif de votre dossier, une suite favorable peut être réservée à votre demande.",
        "Votre dossier a été transmis au service compétent, qui prendra contact avec vous.",
        "Je vous invite à compléter votre dossier en produisant les pièces mentionnées ci-dessous.",
        "Les délais actuels d'instruction sont d'environ trois mois à compter de la réception du dossier complet.",
    ),
    "internal": (
        "Les chefs de bureau veilleront à la bonne diffusion de ces consignes.",
        "Un bilan sera présenté lors de la prochaine réunion de service.",
        "Le nombre de dossiers en instance a diminué de 12 % depuis le début de l'année.",
        "Les effectifs disponibles permettent d'assurer la continuité du service.",
    ),
}

# Middle sentences for mail types whose writer is not a private person.
MIDDLE_SENTENCES_BY_TYPE = {
    "parliamentary_letter": (
        "Je vous serais obligé(e) de bien vouloir m'indiquer les suites susceptibles d'être données à ce dossier.",
        "Je ne doute pas que vous porterez à cette situation toute l'attention qu'elle mérite.",
        "Je vous saurais gré de me tenir informé(e) de l'évolution de ce dossier.",
    ),
    "grant_request": (
        "Le budget prévisionnel et les statuts de l'association sont joints au présent dossier.",
        "Le projet associe plusieurs partenaires locaux, dont la commune et le centre social.",
        "L'action a touché l'an dernier plus de 300 habitants, dont une majorité de jeunes de 12 à 25 ans.",
    ),
    "event_authorisation_request": (
        "Un dispositif de sécurité est prévu en lien avec la police municipale.",
        "Une attestation d'assurance en responsabilité civile est jointe à la présente demande.",
        "Le plan d'implantation et le parcours envisagé figurent en annexe.",
    ),
}

CLOSING_SENTENCES = {
    "incoming": (
        "Je vous prie d'agréer, Monsieur le Préfet, l'expression de ma haute considération.",
        "Dans l'attente de votre réponse, je vous prie d'agréer, Monsieur le Préfet, "
        "l'expression de mes salutations distinguées.",
        "Je vous remercie par avance de l'attention que vous porterez à ma demande.",
    ),
    "outgoing": (
        "Je vous prie d'agréer l'expression de mes salutations distinguées.",
        "Mes services restent à votre disposition pour tout renseignement complémentaire.",
    ),
    "internal": (
        "Je vous remercie de votre attention.",
        "Je reste à votre disposition pour tout complément d'information.",
    ),
}


CLOSING_SENTENCES_BY_TYPE = {
    "parliamentary_letter": (
        "Je vous prie de croire, Monsieur le Préfet, à l'assurance de ma considération distinguée.",
        "Je vous prie d'agréer, Monsieur le Préfet, l'expression de mes sentiments les meilleurs.",
    ),
}


def category_for_mail_type(mail_type_id: str) -> str:
    """Return the category of a mail type id.

    Ids missing from MAIL_TYPE_CATEGORIES are classified by prefix:
    "outgoing_" and "internal_" ids are outgoing and internal, others incoming.
    """
    if mail_type_id in MAIL_TYPE_CATEGORIES:
        return MAIL_TYPE_CATEGORIES[mail_type_id]
    for category in ("outgoing", "internal"):
        if mail_type_id.startswith(f"{category}_"):
            return category
    return "incoming"


def _weighted_choice(rng: random.Random, weights: Mapping[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _luhn_check_digit(payload: str) -> str:
    # Luhn: from the right of the full number, every second digit is doubled.
    # The check digit will be rightmost, so the payload's last digit is doubled.
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def generate_siret(rng: random.Random) -> str:
    """Generate a 14-digit SIRET number that passes the Luhn check, as real ones do."""
    payload = "".join(str(rng.randrange(10)) for _ in range(13))
    return payload + _luhn_check_digit(payload)


def _draw_grant_amount(rng: random.Random) -> Decimal:
    # Log-uniform between 500 and 250,000 euros, so small grants are more
    # frequent, and most requests are round figures.
    raw = math.exp(rng.uniform(math.log(500), math.log(250_000)))
    rounding_draw = rng.random()
    if rounding_draw < 0.5:
        raw = round(raw / 100) * 100
    elif rounding_draw < 0.7:
        raw = round(raw / 10) * 10
    amount = Decimal(str(round(raw, 2))).quantize(Decimal("0.01"))
    return min(max(amount, Decimal("500.00")), Decimal("250000.00"))


def _draw_attendance(rng: random.Random) -> int:
    attendance = int(math.exp(rng.uniform(math.log(30), math.log(20_000))))
    if attendance > 100:
        attendance = round(attendance, -1)
    return attendance


def generate_fields(
    rng: random.Random, mail_type_id: str, letter_date: date
) -> dict:
    """Generate the type-specific field values of a mail; empty for types without fields."""
    if mail_type_id == "residence_permit_request":
        return {
            "foreign_national_number": str(rng.randrange(10**9, 10**10)),
            "nationality": rng.choice(NATIONALITIES),
            "permit_kind": rng.choice(PERMIT_KINDS),
        }
    if mail_type_id == "parliamentary_letter":
        _, title, chamber = generate_parliamentarian(rng)
        return {"elected_official": title, "chamber": chamber}
    if mail_type_id == "grant_request":
        return {
            "amount_requested": _draw_grant_amount(rng),
            "association_siret": generate_siret(rng),
        }
    if mail_type_id == "event_authorisation_request":
        return {
            "event_date": letter_date + timedelta(days=rng.randint(14, 120)),
            "expected_attendance": _draw_attendance(rng),
        }
    if mail_type_id == "administrative_document_request":
        template = rng.choice(DOCUMENT_REQUESTS)
        document = template.format(
            year=letter_date.year - rng.randint(0, 3),
            number=f"{rng.randint(1, 2400):04d}",
            date=format_french_date(letter_date - timedelta(days=rng.randint(30, 900))),
        )
        return {"document_requested": document[0].upper() + document[1:]}
    return {}


def _build_wording_context(
    rng: random.Random,
    letter_date: date,
    fields: Mapping[str, object],
    correspondent: Mapping[str, object] | None,
) -> dict[str, str]:
    """Build the values that subject and body templates may use.

    When the correspondent is a private person, "person" and "city" name them,
    so that "Demande de naturalisation – M. X" names the writer.
    """
    civility, first_name, last_name = _draw_person_name(rng)
    _, city = _draw_place(rng)
    later_date = letter_date + timedelta(days=rng.randint(7, 45))
    event_article, event = rng.choice(EVENT_KINDS)
    document = str(fields.get("document_requested") or rng.choice(DOCUMENT_REQUESTS[1:5]))
    document = document[0].lower() + document[1:]

    context = {
        "person": f"{civility} {first_name} {last_name}",
        "city": city,
        "de_city": with_de(city),
        "street": f"{rng.choice(STREET_TYPES)} {rng.choice(STREET_NAMES)}",
        "date": format_french_date(letter_date - timedelta(days=rng.randint(10, 120))),
        "later_date": format_french_date(later_date),
        "month": FRENCH_MONTHS[later_date.month - 1],
        "year": str(letter_date.year),
        "memo_topic": rng.choice(MEMO_TOPICS),
        "project": rng.choice(GRANT_PROJECTS),
        "event": event,
        "event_capitalised": event[0].upper() + event[1:],
        "an_event": f"{event_article} {event}",
        "de_an_event": with_de(f"{event_article} {event}"),
        "event_date": format_french_date(letter_date + timedelta(days=rng.randint(14, 120))),
        "attendance": str(_draw_attendance(rng)),
        "document": document,
        "de_document": with_de(document),
        "permit_label": PERMIT_KIND_LABELS[rng.choice(PERMIT_KINDS)],
        "nationality": rng.choice(NATIONALITIES),
        "amount": format_euros(_draw_grant_amount(rng)),
    }

    if correspondent is not None and correspondent["kind"] == "person" and correspondent["organisation"] is None:
        context["person"] = (
            f"{correspondent['civility']} {correspondent['first_name']} {correspondent['last_name']}"
        )
        context["city"] = str(correspondent["city"])
        context["de_city"] = with_de(context["city"])

    # Field values take precedence, so the text agrees with the fields.
    if "permit_kind" in fields:
        context["permit_label"] = PERMIT_KIND_LABELS[str(fields["permit_kind"])]
    if "nationality" in fields:
        context["nationality"] = str(fields["nationality"])
    if "amount_requested" in fields:
        context["amount"] = format_euros(fields["amount_requested"])  # type: ignore[arg-type]
    if "event_date" in fields:
        context["event_date"] = format_french_date(fields["event_date"])  # type: ignore[arg-type]
    if "expected_attendance" in fields:
        context["attendance"] = f"{fields['expected_attendance']:,}".replace(",", " ")
    return context


def _draw_registration_dates(
    rng: random.Random, category: str, days_ago: int, today: date
) -> tuple[date, date]:
    """Return (letter_date, arrival_date) for a mail registered about days_ago days before today."""
    arrival_date = today - timedelta(days=days_ago)
    # The mail room is closed at weekends, so Saturday and Sunday registrations
    # move back to Friday. Public holidays are not handled.
    weekday = arrival_date.weekday()
    if weekday >= 5:
        arrival_date -= timedelta(days=weekday - 4)

    if category == "incoming":
        letter_date = arrival_date - timedelta(days=rng.randint(0, MAX_DELIVERY_DAYS))
    else:
        letter_date = arrival_date
    return letter_date, arrival_date


def _generate_mail_with_dates(
    rng: random.Random,
    mail_type_id: str,
    category: str,
    letter_date: date,
    arrival_date: date,
    correspondent: Mapping[str, object] | None = None,
    tied_values: Mapping[str, object] | None = None,
) -> dict:
    """Generate a mail; tied_values replace field values (a correspondent's SIRET, for example)."""
    if category not in CATEGORIES:
        raise ValueError(f"invalid category {category!r}; expected one of {', '.join(CATEGORIES)}")

    fields = generate_fields(rng, mail_type_id, letter_date)
    for field_name, value in (tied_values or {}).items():
        if field_name in fields:
            fields[field_name] = value
    context = _build_wording_context(rng, letter_date, fields, correspondent)

    subject_templates = SUBJECT_TEMPLATES.get(mail_type_id, FALLBACK_SUBJECT_TEMPLATES[category])
    subject = rng.choice(subject_templates).format(**context)

    paragraphs = []
    if mail_type_id in OPENING_TEMPLATES:
        paragraphs.append(rng.choice(OPENING_TEMPLATES[mail_type_id]).format(**context))
    middle_count = rng.randint(1, 2) if paragraphs else rng.randint(1, 3)
    middle_sentences = MIDDLE_SENTENCES_BY_TYPE.get(mail_type_id, MIDDLE_SENTENCES[category])
    paragraphs.extend(rng.sample(middle_sentences, middle_count))
    closing_sentences = CLOSING_SENTENCES_BY_TYPE.get(mail_type_id, CLOSING_SENTENCES[category])
    paragraphs.append(rng.choice(closing_sentences))

    return {
        "mail_type_id": mail_type_id,
        "category": category,
        "subject": subject,
        "letter_date": letter_date,
        "arrival_date": arrival_date,
        "channel": _weighted_choice(rng, CHANNEL_WEIGHTS[category]),
        "priority": _weighted_choice(rng, PRIORITY_WEIGHTS),
        "confidential": rng.random() < CONFIDENTIAL_SHARE,
        "body_paragraphs": paragraphs,
        "fields": fields,
    }


def generate_mail(rng: random.Random, mail_type_id: str, category: str, today: date) -> dict:
    """Generate one mail of the given type and category ("incoming", "outgoing" or "internal").

    The dict has the keys mail_type_id, category, subject, letter_date and
    arrival_date (dates within the last 365 days, never after ``today``),
    channel, priority, confidential, body_paragraphs (2 to 4 French
    sentences) and fields (type-specific values, see generate_fields).

    Raises ValueError for an unknown category.
    """
    days_ago = rng.randint(0, MAX_REGISTRATION_AGE_DAYS)
    letter_date, arrival_date = _draw_registration_dates(rng, category, days_ago, today)
    return _generate_mail_with_dates(rng, mail_type_id, category, letter_date, arrival_date)


# ---------------------------------------------------------------------------
# Mail streams with a shared directory of correspondents
# ---------------------------------------------------------------------------

class _CorrespondentPool:
    """Correspondents drawn with a skewed frequency, so some write often."""

    def __init__(self, entries: Sequence[tuple[dict, dict]]):
        # Each entry is (correspondent, extra values tied to it, such as a SIRET).
        self.entries = list(entries)
        weights = [1 / (rank + 1) ** 0.7 for rank in range(len(self.entries))]
        self.cumulative_weights = []
        total = 0.0
        for weight in weights:
            total += weight
            self.cumulative_weights.append(total)

    def draw(self, rng: random.Random) -> tuple[dict, dict]:
        return rng.choices(self.entries, cum_weights=self.cumulative_weights)[0]


class _DirectoryBuilder:
    """Generate distinct correspondents with distinct e-mail addresses.

    When the generator keeps producing correspondents already in the
    directory (there are only so many communes), the existing entry is
    returned again, so a pool may list it twice.
    """

    MAX_ATTEMPTS = 20

    def __init__(self) -> None:
        self.entries_by_identity: dict[tuple, tuple[dict, dict]] = {}
        self.seen_emails: set[str] = set()

    def add(self, generate: Callable[[], tuple[dict, dict]]) -> tuple[dict, dict]:
        """Add an entry from generate(), which returns (correspondent, tied values)."""
        for _ in range(self.MAX_ATTEMPTS):
            correspondent, tied_values = generate()
            identity = self._identity(correspondent)
            if identity not in self.entries_by_identity:
                self._make_email_unique(correspondent)
                self.entries_by_identity[identity] = (correspondent, tied_values)
                return correspondent, tied_values
        return self.entries_by_identity[identity]

    @staticmethod
    def _identity(correspondent: dict) -> tuple:
        if correspondent["kind"] == "organisation":
            return ("organisation", correspondent["organisation"])
        return (
            "person",
            correspondent["first_name"],
            correspondent["last_name"],
            correspondent["organisation"],
            correspondent["city"],
        )

    def _make_email_unique(self, correspondent: dict) -> None:
        email = correspondent["email"]
        if email is None:
            return
        local_part, domain = email.split("@")
        suffix = 2
        while email in self.seen_emails:
            email = f"{local_part}{suffix}@{domain}"
            suffix += 1
        correspondent["email"] = email
        self.seen_emails.add(email)


def _build_pools(rng: random.Random, pool_size: int) -> dict[str, _CorrespondentPool]:
    """Split pool_size correspondents into persons, associations, other organisations and MPs."""
    builder = _DirectoryBuilder()
    parliamentarian_count = max(1, pool_size // 12)
    association_count = max(2, pool_size // 6)
    organisation_count = max(2, pool_size // 6)
    person_count = pool_size - parliamentarian_count - association_count - organisation_count

    def generate_member() -> tuple[dict, dict]:
        correspondent, title, chamber = generate_parliamentarian(rng)
        return correspondent, {"elected_official": title, "chamber": chamber}

    def generate_association() -> tuple[dict, dict]:
        return generate_organisation(rng, "association"), {"association_siret": generate_siret(rng)}

    def generate_other_organisation() -> tuple[dict, dict]:
        organisation_kind = rng.choice(("commune", "company", "public_body"))
        return generate_organisation(rng, organisation_kind), {}

    def generate_private_person() -> tuple[dict, dict]:
        return generate_person(rng), {}

    return {
        "parliamentarian": _CorrespondentPool([builder.add(generate_member) for _ in range(parliamentarian_count)]),
        "association": _CorrespondentPool([builder.add(generate_association) for _ in range(association_count)]),
        "organisation": _CorrespondentPool(
            [builder.add(generate_other_organisation) for _ in range(organisation_count)]
        ),
        "person": _CorrespondentPool([builder.add(generate_private_person) for _ in range(person_count)]),
    }


# Relative weights of the pools that write (or receive) each mail type.
_POOL_WEIGHTS_BY_TYPE = {
    "residence_permit_request": {"person": 1},
    "naturalisation_request": {"person": 1},
    "public_complaint": {"person": 9, "association": 1},
    "administrative_document_request": {"person": 8, "association": 2},
    "grant_request": {"association": 1},
    "event_authorisation_request": {"association": 7, "person": 3},
    "parliamentary_letter": {"parliamentarian": 1},
}
_POOL_WEIGHTS_BY_CATEGORY = {
    "incoming": {"person": 6, "association": 2, "organisation": 2},
    "outgoing": {"person": 6, "association": 2, "organisation": 1, "parliamentarian": 1},
}


def iter_mails(
    seed: int, count: int, today: date, type_weights: Mapping[str, float]
) -> Iterator[dict]:
    """Yield ``count`` mails in order of arrival date, each with a "correspondent" key.

    Mail types are drawn with ``type_weights`` (type id -> relative weight).
    Correspondents come from a directory of at most ``count // 4 + 10``
    entries, so most of them appear on several mails. The same dict object is
    reused for the same correspondent. The correspondent matches the mail type (an
    association for a grant request, a member of Parliament for a
    parliamentary letter, whose fields then name that member). Internal mail
    has no external correspondent, so its "correspondent" is None.

    Raises ValueError when count is negative or the weights are empty,
    negative or all zero.
    """
    if count < 0:
        raise ValueError(f"invalid count {count}; expected 0 or more")
    if not type_weights:
        raise ValueError("type_weights is empty; give at least one mail type id with a positive weight")
    if any(weight < 0 for weight in type_weights.values()) or sum(type_weights.values()) <= 0:
        raise ValueError(f"invalid type_weights {dict(type_weights)!r}; weights must be >= 0 with a positive sum")

    rng = random.Random(seed)
    type_ids = list(type_weights)
    weights = [type_weights[type_id] for type_id in type_ids]
    pools = _build_pools(rng, count // 4 + 10)

    # Drawing all ages first and sorting them yields mail in arrival order,
    # as a register numbers it.
    ages = sorted((rng.randint(0, MAX_REGISTRATION_AGE_DAYS) for _ in range(count)), reverse=True)

    for days_ago in ages:
        mail_type_id = rng.choices(type_ids, weights=weights)[0]
        category = category_for_mail_type(mail_type_id)
        letter_date, arrival_date = _draw_registration_dates(rng, category, days_ago, today)

        correspondent = None
        tied_values: dict = {}
        if category != "internal":
            pool_weights = _POOL_WEIGHTS_BY_TYPE.get(mail_type_id, _POOL_WEIGHTS_BY_CATEGORY[category])
            correspondent, tied_values = pools[_weighted_choice(rng, pool_weights)].draw(rng)

        # tied_values keep the fields consistent with the correspondent: the
        # member of Parliament who wrote, the association's own SIRET.
        mail = _generate_mail_with_dates(
            rng, mail_type_id, category, letter_date, arrival_date, correspondent, tied_values
        )
        mail["correspondent"] = correspondent
        yield mail
