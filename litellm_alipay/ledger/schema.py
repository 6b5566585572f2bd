"""The ledger's tables, in the SQL both engines speak, and how the schema is created and migrated.

Creation is idempotent and serialised (PostgreSQL: an advisory lock; SQLite: its write lock), so the
first call of every worker and instance may run it at once. ``alipay_ledger_meta.schema_version`` names
the schema; a migration is a numbered list of statements applied in one transaction when a ledger
older than ``SCHEMA_VERSION`` is opened, and a ledger newer than this code is refused (never written
with an older code's idea of its rows).
"""

from __future__ import annotations

from .engine import Engine, PostgresEngine, Tx

SCHEMA_VERSION = 1

#: Logical requests by hashed scoped key; actions under them; totals, proposals and handled
#: notifications as named values. Amounts are integer cents; times are Unix seconds.
CREATE = (
    "CREATE TABLE IF NOT EXISTS alipay_ledger_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS alipay_requests ("
    " id TEXT PRIMARY KEY, app_id TEXT NOT NULL, fingerprint TEXT NOT NULL DEFAULT '',"
    " response TEXT, busy_until DOUBLE PRECISION NOT NULL DEFAULT 0,"
    " created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS alipay_actions ("
    " request_id TEXT NOT NULL, action TEXT NOT NULL, trade TEXT NOT NULL, out_request_no TEXT NOT NULL,"
    " amount_cents BIGINT, state TEXT NOT NULL, result TEXT, answer TEXT, holds TEXT NOT NULL DEFAULT '[]',"
    " created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL,"
    " PRIMARY KEY (request_id, action, trade))",
    "CREATE TABLE IF NOT EXISTS alipay_values ("
    " name TEXT PRIMARY KEY, text_value TEXT, int_value BIGINT, expires DOUBLE PRECISION)",
    # A2M pay-per-use orders (payments/agent/a2m.py): billed before the 402, one service per trade
    "CREATE TABLE IF NOT EXISTS alipay_a2m_orders ("
    " out_trade_no TEXT PRIMARY KEY, app_id TEXT NOT NULL, resource_id TEXT NOT NULL, amount_cents BIGINT NOT NULL,"
    " goods_name TEXT NOT NULL, pay_before DOUBLE PRECISION NOT NULL, state TEXT NOT NULL, trade_no TEXT,"
    " claim TEXT, claimed DOUBLE PRECISION, created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS alipay_a2m_orders_trade ON alipay_a2m_orders (trade_no)",
    # Delegation Pay's mandates (payments/agent/mandate.py)
    "CREATE TABLE IF NOT EXISTS alipay_mandates ("
    " mandate_id TEXT PRIMARY KEY, app_id TEXT NOT NULL, owner TEXT NOT NULL, request_id TEXT NOT NULL,"
    " external_agreement_no TEXT NOT NULL, agreement_no TEXT, delegation_id TEXT, status TEXT NOT NULL,"
    " max_total_cents BIGINT NOT NULL, times_limit BIGINT, remaining_cents BIGINT NOT NULL,"
    " remaining_times BIGINT, validity_start TEXT NOT NULL, validity_end TEXT NOT NULL,"
    " description TEXT NOT NULL, tag TEXT, constraints TEXT NOT NULL DEFAULT '{}', synced DOUBLE PRECISION,"
    " created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL)",
)

#: version reached -> statements that bring the previous version to it
MIGRATIONS: dict[int, tuple[str, ...]] = {}


class SchemaTooNew(RuntimeError):
    pass


def ensure(engine: Engine) -> None:
    """Create or migrate the schema (blocking; call once per engine)."""
    with engine.transaction() as tx:
        if isinstance(engine, PostgresEngine):
            tx.run("SELECT pg_advisory_xact_lock(?)", (0x414C4950,))  # one creator at a time
        for statement in CREATE:
            tx.run(statement)
        found = tx.run("SELECT value FROM alipay_ledger_meta WHERE name = 'schema_version'").fetchone()
        version = int(found[0]) if found else 0
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(f"the ledger's schema is version {version}, newer than this litellm-alipay "
                               f"({SCHEMA_VERSION}): upgrade litellm-alipay on every instance")
        for step in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
            _apply(tx, MIGRATIONS.get(step, ()))
        tx.run("INSERT INTO alipay_ledger_meta (name, value) VALUES ('schema_version', ?) "
               "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))


def _apply(tx: Tx, statements: tuple[str, ...]) -> None:
    for statement in statements:
        tx.run(statement)
