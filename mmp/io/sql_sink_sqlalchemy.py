"""Predictions into a table of any other SQLAlchemy dialect (BigQuery, Snowflake, MySQL, SQLite, ...).

Batched INSERTs fill a staging table; one transaction then moves the rows into the target (replace
= DELETE + INSERT ... SELECT, append = INSERT ... SELECT) and drops the staging table. Upsert has no
portable SQL and is refused. A staging table left by a crash is not swept: drop it by hand.
The tests run this path on SQLite; BigQuery and the others share it unchanged.
"""

from __future__ import annotations

import uuid
from typing import Any

from mmp.errors import UserError
from mmp.io.sql_sink import SqlOutput, columns_of
from mmp.masking import scrub

ROWS_PER_INSERT = 10_000


class SqlAlchemyTable:
    """One target table of one job: open (connect), prepare (check, stage), write (INSERT), publish."""

    def __init__(self, output: SqlOutput):
        self.output, self.target = output, output.target
        self.engine: Any = None
        self.staging: Any = None

    def open(self) -> None:
        import sqlalchemy as sa

        try:
            self.engine = sa.create_engine(self.target.url)
            self.engine.connect().close()
        except Exception as exc:  # a missing driver, a refused connection, bad credentials
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"output: cannot connect to {self.target.shown}: {scrub(first)}") from exc

    def prepare(self, schema: Any) -> None:
        import sqlalchemy as sa

        if self.output.mode == "upsert":
            raise UserError(f"output.mode: upsert is supported on PostgreSQL and DuckDB tables, not "
                            f"{self.target.dialect}; use replace or append for {self.target.shown}")
        ours = columns_of(schema)
        inspector = sa.inspect(self.engine)
        self.exists = inspector.has_table(self.target.table, schema=self.target.schema)
        if self.exists:  # names only: each dialect spells its types its own way
            theirs = {c["name"] for c in inspector.get_columns(self.target.table, schema=self.target.schema)}
            missing = [c for c in ours if c not in theirs]
            if missing:
                raise UserError(f"output: the existing table {self.target.shown} has no column"
                                f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} (nothing written)")
        types = {"smallint": sa.SmallInteger, "integer": sa.Integer, "bigint": sa.BigInteger, "real": sa.Float,
                 "double precision": sa.Float, "numeric": sa.Numeric, "text": sa.Text, "boolean": sa.Boolean,
                 "date": sa.Date, "timestamp with time zone": lambda: sa.DateTime(timezone=True),
                 "timestamp without time zone": sa.DateTime}
        metadata = sa.MetaData(schema=self.target.schema)
        self.table = sa.Table(self.target.table, metadata, *[sa.Column(c, types[k]()) for c, k in ours.items()])
        name = f"{self.target.table[:40]}__mmp_staging_{uuid.uuid4().hex[:8]}"
        self.staging = sa.Table(name, metadata, *[sa.Column(c, types[k]()) for c, k in ours.items()])
        self.staging.create(self.engine)

    def write(self, table: Any) -> None:
        extra = {"run_id": self.output.run_id, "predicted_at": self.output.predicted_at}
        records = [{**row, **extra} for row in table.to_pylist()]
        with self.engine.begin() as conn:
            for start in range(0, len(records), ROWS_PER_INSERT):
                conn.execute(self.staging.insert(), records[start:start + ROWS_PER_INSERT])

    def publish(self) -> None:
        columns = [c.name for c in self.table.columns]
        with self.engine.begin() as conn:
            if not self.exists:
                self.table.create(conn)
            elif self.output.mode == "replace":
                conn.execute(self.table.delete())
            conn.execute(self.table.insert().from_select(columns, self.staging.select()))
            self.staging.drop(conn)
        self.engine.dispose()

    def discard(self) -> None:
        if self.engine is None:
            return
        try:
            if self.staging is not None:
                self.staging.drop(self.engine, checkfirst=True)
        finally:
            self.engine.dispose()
