"""The care scan's indexes carry what its statements filter on: a day's birthdays and
anniversaries are told apart from members who left (and, for anniversaries, from those
who joined later) inside the index, and a day's interactions and orders give their
member without reading the row

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 17:30:00.000000
"""
from alembic import op


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

# As 0017 spells it (and storage.dialects.month_day in statements). Copied, not imported:
# a migration keeps the text it ran with, whatever later code or migrations say.
SINCE_MD = {
    'sqlite': "(substr(member_since, 6, 2) * 100 + substr(member_since, 9, 2))",
    'postgresql': "(EXTRACT(month FROM member_since) * 100 + EXTRACT(day FROM member_since))",
}


def _replace(name: str, table: str, columns: list[str]) -> None:
    op.drop_index(name, table_name=table)
    op.create_index(name, table, columns)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _replace('ix_members_birth_md_calendar', 'members', ['birth_md', 'birthday_calendar', 'birthday_leap_month', 'left_at'])
    op.drop_index('ix_members_since_md', table_name='members')
    op.execute(f"CREATE INDEX ix_members_since_md ON members ({SINCE_MD[dialect]}, member_since, left_at)")
    _replace('ix_interactions_at', 'interactions', ['at', 'kind', 'member_id'])
    _replace('ix_orders_ordered_at', 'orders', ['ordered_at', 'member_id'])
    op.execute("ANALYZE" if dialect == 'sqlite' else "ANALYZE members, interactions, orders")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _replace('ix_orders_ordered_at', 'orders', ['ordered_at'])
    _replace('ix_interactions_at', 'interactions', ['at'])
    op.drop_index('ix_members_since_md', table_name='members')
    op.execute(f"CREATE INDEX ix_members_since_md ON members ({SINCE_MD[dialect]})")
    _replace('ix_members_birth_md_calendar', 'members', ['birth_md', 'birthday_calendar', 'birthday_leap_month'])
