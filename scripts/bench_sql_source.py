"""Time PostgreSQL reads for SQL sources: COPY -> pyarrow CSV vs a server-side cursor (psycopg, SQLAlchemy).

Usage: PYTHONPATH=. python scripts/bench_sql_source.py [ROWS]   (starts a throwaway server, as the tests do)
"""

from __future__ import annotations

import sys
import time


def main(rows: int) -> None:
    from mmp.io import sql_engines
    from tests.postgres import require_bindir, running_postgres

    with running_postgres(require_bindir()) as server:
        url = server.new_database("bench")
        with server.connect("bench", autocommit=True) as conn:
            conn.execute("CREATE TABLE t AS SELECT i AS id, random() AS a, random() * 100 AS b, (i % 7)::int AS c, "
                         "(i % 1000)::numeric / 10 AS d, 'name_' || (i % 5000) AS s, i % 2 = 0 AS flag, "
                         "DATE '2026-01-01' + (i % 365) AS day, random() AS e, random() AS f "
                         f"FROM generate_series(1, {rows}) AS i")
        for name, reader in (("COPY csv -> pyarrow", sql_engines.postgres_tables),
                             ("psycopg server-side cursor", sql_engines.postgres_cursor_tables),
                             ("SQLAlchemy stream_results", sql_engines.sqlalchemy_tables)):
            started = time.perf_counter()
            count = sum(t.num_rows for t in reader("SELECT * FROM t", url, {}, 100_000, {}))
            seconds = time.perf_counter() - started
            print(f"{name:<28} {count:,} rows x 10 columns in {seconds:.2f} s ({count / seconds:,.0f} rows/s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
