"""Predictions into a PostgreSQL table: COPY into an UNLOGGED staging table, then one transaction.

replace = TRUNCATE + INSERT ... SELECT (the table itself stays, with its grants, indexes, owner and
the views over it; drop-and-rename would lose them), append = INSERT ... SELECT, upsert = INSERT ...
ON CONFLICT (entity columns) DO UPDATE. The writer holds an advisory lock named after its staging
table for as long as it lives; a staging table whose lock is free belongs to a dead writer and the
next writer to the same target drops it.
"""

from __future__ import annotations

import io
import re
import uuid
from typing import Any

from mmp.errors import UserError
from mmp.io.sql_sink import SqlOutput, columns_of, mismatches, upsert_keys
from mmp.masking import scrub

LOCK_CLASS = 0x6D6D70  # "mmp": the first key of our advisory locks, the second is hashtext(staging table)
STAGING = "__mmp_staging_"


def _message(exc: BaseException) -> str:
    """psycopg's message on one line (libpq splits a connection failure over two), password-free."""
    return scrub(" ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__)


class PostgresTable:
    """One target table of one job: open (connect, sweep), prepare (check, stage), write (COPY), publish."""

    def __init__(self, output: SqlOutput):
        self.output, self.target = output, output.target
        self.dsn = re.sub(r"^[^:]+://", "postgresql://", self.target.url)
        self.staging = f"{self.target.table[:63 - len(STAGING) - 8]}{STAGING}{uuid.uuid4().hex[:8]}"
        self.conn: Any = None
        self.columns: list[str] = []
        self.exists = False
        self.created = False

    def _name(self, table: str) -> Any:
        from psycopg import sql

        return sql.Identifier(self.target.schema, table)

    def open(self) -> None:
        import psycopg

        try:
            self.conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10,
                                        application_name="mmp batch-inference")
        except psycopg.Error as exc:
            raise UserError(f"output: cannot connect to {self.target.shown}: {_message(exc)}") from exc
        schemas = [r[0] for r in self.conn.execute("SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' "
                                                   "AND nspname <> 'information_schema' ORDER BY 1")]
        if self.target.schema not in schemas:
            self.conn.close()
            raise UserError(f"output.table: schema '{self.target.schema}' does not exist in {self.target.shown}; "
                            f"schemas there: {', '.join(schemas)}")
        self.sweep_stale()

    def sweep_stale(self) -> list[str]:
        """Drop staging tables of this target whose writer is gone (its advisory lock is free)."""
        prefix = f"{self.target.table[:63 - len(STAGING) - 8]}{STAGING}"
        removed = []
        for (name,) in self.conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind = 'r' AND strpos(c.relname, %s) = 1",
                [self.target.schema, prefix]).fetchall():
            if not re.fullmatch(r"[0-9a-f]{8}", name[len(prefix):]):
                continue
            key = f"{self.target.schema}.{name}"
            if self.conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", [LOCK_CLASS, key]).fetchone()[0]:
                self.conn.execute(f"DROP TABLE IF EXISTS {self._sql(name)}")
                self.conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [LOCK_CLASS, key])
                removed.append(name)
        return removed

    def _sql(self, table: str) -> str:
        return self._name(table).as_string(self.conn)

    def prepare(self, schema: Any) -> None:
        """Check the output against an existing target (exit 2 before writing), then create the staging table."""
        from psycopg import sql

        out = self.output
        ours = columns_of(schema)
        keys = upsert_keys(out.mode, out.entity_columns, list(ours), self.target)
        theirs = {c: (k, n == "NO" and d is None) for c, k, n, d in self.conn.execute(
            "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [self.target.schema, self.target.table]).fetchall()}
        self.exists = bool(theirs)
        if self.exists:
            mismatches(ours, theirs, self.target)
            if keys and not self._unique_on(keys):
                raise UserError(f"output.mode: upsert into {self.target.shown} needs a unique index or constraint on "
                                f"exactly ({', '.join(keys)}); the table has none (create one, or use replace or append)")
        self.columns, self.keys, self.types = list(schema.names), keys, ours
        self.conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [LOCK_CLASS, f"{self.target.schema}.{self.staging}"])
        definitions = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(k)) for c, k in ours.items()]
        definitions[-2] = sql.SQL("{} text DEFAULT {}").format(sql.Identifier("run_id"), sql.Literal(out.run_id))
        definitions[-1] = sql.SQL("{} timestamptz DEFAULT {}").format(sql.Identifier("predicted_at"),
                                                                     sql.Literal(out.predicted_at))
        self.conn.execute(sql.SQL("CREATE UNLOGGED TABLE {} ({})").format(self._name(self.staging),
                                                                          sql.SQL(", ").join(definitions)))
        self.created = True
        self.copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
            self._name(self.staging), sql.SQL(", ").join(map(sql.Identifier, self.columns)))

    def _unique_on(self, keys: list[str]) -> bool:
        rows = self.conn.execute(
            "SELECT array_agg(a.attname::text) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisunique "
            "AND i.indpred IS NULL AND i.indexprs IS NULL GROUP BY i.indexrelid",
            [self._sql(self.target.table)]).fetchall()
        return any(sorted(columns) == sorted(keys) for (columns,) in rows)

    def write(self, table: Any) -> None:
        """One chunk as CSV (pyarrow writes it in C++; NULL is an unquoted empty field, as COPY reads it)."""
        import pyarrow.csv as pacsv

        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
        with self.conn.cursor().copy(self.copy) as copy:
            copy.write(buffer.getbuffer())

    def publish(self) -> None:
        """In one transaction: create the target if missing, move the staged rows in, drop the staging table."""
        import psycopg
        from psycopg import sql

        target, staging = self._name(self.target.table), self._name(self.staging)
        names = sql.SQL(", ").join(map(sql.Identifier, self.types))
        insert = sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(target, names, names, staging)
        try:
            with self.conn.transaction():
                if not self.exists:
                    columns = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(k)) for c, k in self.types.items()]
                    if self.keys:
                        columns.append(sql.SQL("UNIQUE ({})").format(sql.SQL(", ").join(map(sql.Identifier, self.keys))))
                    self.conn.execute(sql.SQL("CREATE TABLE {} ({})").format(target, sql.SQL(", ").join(columns)))
                elif self.output.mode == "replace":
                    self.conn.execute(sql.SQL("TRUNCATE {}").format(target))
                if self.keys:
                    updates = [sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c))
                               for c in self.types if c not in self.keys]
                    insert = sql.SQL("{} ON CONFLICT ({}) DO UPDATE SET {}").format(
                        insert, sql.SQL(", ").join(map(sql.Identifier, self.keys)), sql.SQL(", ").join(updates))
                self.conn.execute(insert)
                self.conn.execute(sql.SQL("DROP TABLE {}").format(staging))
        except (psycopg.errors.CardinalityViolation, psycopg.errors.UniqueViolation,
                psycopg.errors.NotNullViolation) as exc:
            self.discard()
            raise UserError(f"output: {self.target.shown} is unchanged: {_message(exc)}"
                            + (" (the data has several rows for one entity)"
                               if isinstance(exc, psycopg.errors.CardinalityViolation) else "")) from exc
        self.conn.close()

    def discard(self) -> None:
        """Drop the staging table (a broken connection leaves it to the next writer's sweep)."""
        if self.conn is None or self.conn.closed:
            return
        try:
            if self.created:
                from psycopg import sql

                self.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._name(self.staging)))
        except Exception:
            pass
        finally:
            self.conn.close()
