"""search index

The embedded search index: ``search_document`` with, on SQLite, an FTS5
table over its analysed terms kept in step by triggers, and on PostgreSQL a
generated tsvector column with a GIN index. Also the text extracted from
attachments and the saved searches.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

SQLITE_FTS = [
    # External-content FTS5: the text lives once, in search_document.
    "CREATE VIRTUAL TABLE search_document_fts USING fts5("
    "terms, content='search_document', content_rowid='mail_id', tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER search_document_after_insert AFTER INSERT ON search_document BEGIN "
    "INSERT INTO search_document_fts(rowid, terms) VALUES (new.mail_id, new.terms); END",
    "CREATE TRIGGER search_document_after_delete AFTER DELETE ON search_document BEGIN "
    "INSERT INTO search_document_fts(search_document_fts, rowid, terms) VALUES ('delete', old.mail_id, old.terms); END",
    "CREATE TRIGGER search_document_after_update AFTER UPDATE ON search_document BEGIN "
    "INSERT INTO search_document_fts(search_document_fts, rowid, terms) VALUES ('delete', old.mail_id, old.terms); "
    "INSERT INTO search_document_fts(rowid, terms) VALUES (new.mail_id, new.terms); END",
]

POSTGRESQL_TEXT_SEARCH = [
    "CREATE EXTENSION IF NOT EXISTS unaccent",
    # unaccent() is only STABLE (it reads its dictionary), which a generated column or an
    # index refuses; naming the dictionary makes the result fixed, so the wrapper is IMMUTABLE.
    "CREATE OR REPLACE FUNCTION estafette_unaccent(value text) RETURNS text "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT "
    "AS $$ SELECT public.unaccent('public.unaccent'::regdictionary, value) $$",
    "ALTER TABLE search_document ADD COLUMN terms_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, estafette_unaccent(terms))) STORED",
    "CREATE INDEX ix_search_document_terms_vector ON search_document USING gin (terms_vector)",
]


def upgrade():
    op.create_table(
        'search_document',
        sa.Column('mail_id', sa.Integer(), sa.ForeignKey('mail.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('chrono_key', sa.String(length=80), nullable=False),
        sa.Column('chrono_tail', sa.String(length=80), nullable=False),
        sa.Column('terms', sa.Text(), nullable=False),
        sa.Column('display_text', sa.Text(), nullable=False),
        sa.Column('attachment_text', sa.Text(), nullable=False),
        sa.Column('mail_version', sa.Integer(), nullable=False),
        sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_search_document_chrono_key', 'search_document', ['chrono_key'])
    op.create_index('ix_search_document_chrono_tail', 'search_document', ['chrono_tail'])
    op.create_table(
        'search_extracted_text',
        sa.Column('sha256', sa.String(length=64), primary_key=True),
        sa.Column('method', sa.String(length=16), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('extracted_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        'saved_search',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('user_id', sa.Integer(), sa.ForeignKey('ab_user.id', ondelete='CASCADE'), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('query_string', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('user_id', 'name', name='uq_saved_search_user_name'),
    )
    op.create_index('ix_saved_search_user_id', 'saved_search', ['user_id'])

    dialect = op.get_bind().dialect.name
    statements = SQLITE_FTS if dialect == 'sqlite' else POSTGRESQL_TEXT_SEARCH if dialect == 'postgresql' else []
    for statement in statements:
        op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        op.execute("DROP TABLE IF EXISTS search_document_fts")
    op.drop_index('ix_saved_search_user_id', table_name='saved_search')
    op.drop_table('saved_search')
    op.drop_table('search_extracted_text')
    op.drop_index('ix_search_document_chrono_tail', table_name='search_document')
    op.drop_index('ix_search_document_chrono_key', table_name='search_document')
    op.drop_table('search_document')
    if dialect == 'postgresql':
        op.execute("DROP FUNCTION IF EXISTS estafette_unaccent(text)")
