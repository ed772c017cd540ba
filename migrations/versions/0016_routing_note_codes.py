"""routing notes of the history stored as codes

Revision ID: 0016
Revises: 0015

Routing stored its notes in a registration's history as English sentences,
which the history page matched with regular expressions to show them in the
user's language. It now stores a code and its values, such as
``{"code": "assignee_unknown", "user": "dupont"}``. This migration rewrites
the sentences already stored; a note of another form is kept as it is.
"""
import json
import re

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

BATCH_SIZE = 1000

# The sentences routing wrote before this revision, with the code each becomes.
SENTENCES = (
    (re.compile(r"department (?P<chosen>\S+) chosen on the form instead of (?P<routed>\S+)"), "department_chosen"),
    (re.compile(r"assignee chosen on the form"), "assignee_chosen"),
    (re.compile(r"assignee (?P<user>\S+) unknown or inactive: left empty"), "assignee_unknown"),
    (re.compile(r"assignee (?P<user>\S+) is not in (?P<department>\S+): left empty"), "assignee_outside"),
    (re.compile(r"copy to (?P<user>\S+) skipped: unknown or inactive user"), "copy_user_unknown"),
)


def note_code(note):
    """Return the code form of a stored note, or the note itself when it is no sentence of SENTENCES."""
    if not isinstance(note, str):
        return note
    for pattern, code in SENTENCES:
        match = pattern.fullmatch(note)
        if match:
            return {"code": code, **match.groupdict()}
    return note


def upgrade():
    connection = op.get_bind()
    history = sa.table("history_entry", sa.column("id", sa.Integer), sa.column("event", sa.String),
                       sa.column("details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")))
    # Only entries with a note: an empty list is written "[]".
    with_notes = sa.cast(history.c.details, sa.Text).like('%"notes": ["%')
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(history.c.id, history.c.details)
            .where(history.c.event == "registered", history.c.id > last_id, with_notes)
            .order_by(history.c.id).limit(BATCH_SIZE)
        ).all()
        if not rows:
            break
        last_id = rows[-1].id
        for row in rows:
            details = row.details if isinstance(row.details, dict) else json.loads(row.details)
            routing = details.get("routing")
            if not isinstance(routing, dict) or not isinstance(routing.get("notes"), list):
                continue
            notes = [note_code(note) for note in routing["notes"]]
            if notes != routing["notes"]:
                details = {**details, "routing": {**routing, "notes": notes}}
                connection.execute(history.update().where(history.c.id == row.id).values(details=details))


def downgrade():
    # The sentences are not written back: the history page of the earlier code shows a code form as stored.
    pass
