"""The care scan's indexes: birthdays by (birth_md, calendar, leap month), anniversaries by
the month-day of member_since, a member's layer from an index alone; SQLite's planner
statistics taken once

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 09:30:00.000000
"""
from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

# month * 100 + day of member_since, spelled exactly as storage.dialects.month_day writes
# it in statements (SQLite uses an index on an expression only for the same expression;
# PostgreSQL indexes only immutable ones, which EXTRACT is and to_char is not).
SINCE_MD = {
    'sqlite': "(substr(member_since, 6, 2) * 100 + substr(member_since, 9, 2))",
    'postgresql': "(EXTRACT(month FROM member_since) * 100 + EXTRACT(day FROM member_since))",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index('ix_members_birth_md', table_name='members')
    op.create_index('ix_members_birth_md_calendar', 'members', ['birth_md', 'birthday_calendar', 'birthday_leap_month'])
    op.execute(f"CREATE INDEX ix_members_since_md ON members ({SINCE_MD[dialect]})")
    op.create_index('ix_layer_assignments_member_scheme_layer', 'layer_assignments', ['member_id', 'scheme', 'layer'])
    # The planner chooses between these and the layer index by their sizes. PostgreSQL's
    # autovacuum keeps statistics; SQLite has none until ANALYZE runs, and without them it
    # starts the care scan's statements from the wrong index. From here on the care scan
    # keeps them (PRAGMA optimize).
    op.execute("ANALYZE" if dialect == 'sqlite' else "ANALYZE members, layer_assignments")


def downgrade() -> None:
    op.drop_index('ix_layer_assignments_member_scheme_layer', table_name='layer_assignments')
    op.drop_index('ix_members_since_md', table_name='members')
    op.drop_index('ix_members_birth_md_calendar', table_name='members')
    op.create_index('ix_members_birth_md', 'members', ['birth_md'])
