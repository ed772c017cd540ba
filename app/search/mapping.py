"""The one index definition for Elasticsearch and OpenSearch: settings, French analyzer, mapping.

Custom fields are key/value pairs in one ``custom_fields`` object, so the
number of mapped fields stays fixed however many mail types and fields the
schemas declare, and a field that is a date in one type and text in another
never conflicts. Dynamic mapping is off ("strict" would reject documents).
"""

from __future__ import annotations

from typing import Any

FRENCH_TEXT = {"type": "text", "analyzer": "estafette_french"}
# The fields that snippets are taken from (app.search.query.HIGHLIGHT_FIELDS) also index the
# character offsets of each word, so the unified highlighter reads them from the postings
# instead of analysing the stored text again for each hit. An index created before these
# settings keeps working, with slower snippets, until `flask search reindex` rebuilds it.
HIGHLIGHTED_TEXT = {**FRENCH_TEXT, "index_options": "offsets"}
# The keyword fields of the facets build their global ordinals when a refresh opens new
# segments, not in the first search after it.
FACET_KEYWORD = {"type": "keyword", "eager_global_ordinals": True}

INDEX_SETTINGS: dict[str, Any] = {
    "number_of_shards": 1,
    "number_of_replicas": 0,
    # Each segment keeps its mails newest first, so a window probe sorted by mail id descending
    # stops after EXACT_LIMIT + 1 mails of each segment. In an unsorted index the mails come
    # oldest first, so each one enters the queue of the newest. There the probe for "demande"
    # (590,000 of 1,000,000 mails) took 140 to 170 ms, against 3 to 6 ms sorted (4 to 11 ms for
    # the date_asc probe).
    "sort": {"field": "mail_id", "order": "desc"},
    "analysis": {
        "filter": {
            # Elided articles and pronouns; the filter strips both ' and ’.
            "estafette_elision": {
                "type": "elision",
                "articles_case": True,
                "articles": ["l", "m", "t", "qu", "n", "s", "j", "d", "c", "jusqu", "quoiqu", "lorsqu", "puisqu"],
            },
            "estafette_light_stemmer": {"type": "stemmer", "language": "light_french"},
        },
        "analyzer": {
            "estafette_french": {
                "type": "custom",
                "tokenizer": "standard",
                # asciifolding folds accents and expands ligatures: "Œuvre" -> "oeuvre".
                "filter": ["estafette_elision", "lowercase", "asciifolding", "estafette_light_stemmer"],
            },
        },
        "normalizer": {
            "estafette_folded": {"type": "custom", "filter": ["lowercase", "asciifolding"]},
        },
    },
}

# Raised at every change of the settings or mappings below that an existing index cannot take in
# place (index sort, new fields the queries need). An index of another version is refused with a
# message asking for `flask search reindex` (app.search.backends.cluster).
MAPPING_VERSION = 2

MAPPINGS: dict[str, Any] = {
    "dynamic": False,
    "_meta": {"estafette_mapping_version": MAPPING_VERSION},
    "properties": {
        # The mail id as a number with doc values, which the windows past EXACT_LIMIT sort and
        # cut on (app.search.query). An index created without it is refused by its mapping
        # version until `flask search reindex` rebuilds it.
        "mail_id": {"type": "long"},
        "chrono": {"type": "keyword"},
        "chrono_key": {"type": "keyword"},
        "chrono_tail": {"type": "keyword"},
        "subject": {**HIGHLIGHTED_TEXT, "copy_to": "all_text"},
        "correspondents": {**HIGHLIGHTED_TEXT, "copy_to": "all_text"},
        "custom_fields": {
            "properties": {
                "key": {"type": "keyword"},
                "value": {**HIGHLIGHTED_TEXT, "copy_to": "all_text",
                          "fields": {"raw": {"type": "keyword", "ignore_above": 256, "normalizer": "estafette_folded"}}},
            }
        },
        "notes": {**HIGHLIGHTED_TEXT, "copy_to": "all_text"},
        "attachment_names": {**HIGHLIGHTED_TEXT, "copy_to": "all_text"},
        "attachment_text": {**HIGHLIGHTED_TEXT, "copy_to": "all_text"},
        "all_text": FRENCH_TEXT,
        "category": FACET_KEYWORD,
        "mail_type": FACET_KEYWORD,
        "status": FACET_KEYWORD,
        "priority": {"type": "keyword"},
        "arrival_date": {"type": "date", "format": "strict_date"},
        "due_date": {"type": "date", "format": "strict_date"},
        "letter_date": {"type": "date", "format": "strict_date"},
        "closed": {"type": "boolean"},
        "mail_version": {"type": "integer"},
        # Visibility facts (app.mail.visibility.visibility_facts).
        "handling_department_id": {"type": "integer"},
        "initiating_department_id": {"type": "integer"},
        "created_by_id": {"type": "integer"},
        "assignee_id": {"type": "integer"},
        "confidential": {"type": "boolean"},
        "listed_user_ids": {"type": "integer"},
        "listed_department_ids": {"type": "integer"},
    },
}


def index_definition() -> dict[str, Any]:
    return {"settings": {"index": INDEX_SETTINGS}, "mappings": MAPPINGS}
