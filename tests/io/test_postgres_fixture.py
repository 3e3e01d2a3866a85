"""The throwaway PostgreSQL server of tests/postgres.py: it works, it is isolated, and it leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import optuna
import psycopg
import pytest

from tests.conftest import REPO
from tests.postgres import (SKIP_REASON, PostgresServer, find_bindir, processes_using, require_bindir,
                            running_postgres)

pytestmark = pytest.mark.slow


def wait_until_gone(root: Path, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := processes_using(root)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def test_server_answers_on_loopback_with_a_password(postgres_server: PostgresServer):
    assert postgres_server.url == (f"postgresql+psycopg://mmp:{postgres_server.password}"
                                   f"@127.0.0.1:{postgres_server.port}/mmp")
    with psycopg.connect(postgres_server.dsn) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("mmp", "mmp")
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute("SHOW unix_socket_directories").fetchone() == (str(postgres_server.root),)
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)
    wrong = postgres_server.dsn.replace(postgres_server.password, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=10)


def test_server_does_not_run_as_root(postgres_server: PostgresServer):
    uid = int(next(line for line in Path(f"/proc/{postgres_server.pid}/status").read_text().splitlines()
                   if line.startswith("Uid:")).split()[1])
    assert uid != 0
    if os.geteuid() != 0:
        assert uid == os.geteuid()


def test_create_table_and_read_it_back(postgres_db: str, postgres_server: PostgresServer):
    database = postgres_db.rsplit("/", 1)[1]
    with postgres_server.connect(database) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO t VALUES (1, 'one'), (2, 'two')")
        conn.commit()
        assert conn.execute("SELECT id, name FROM t ORDER BY id").fetchall() == [(1, "one"), (2, "two")]


def test_two_connections_see_each_others_committed_rows(postgres_db: str, postgres_server: PostgresServer):
    database = postgres_db.rsplit("/", 1)[1]
    with postgres_server.connect(database) as a, postgres_server.connect(database) as b:
        a.execute("CREATE TABLE t (id int PRIMARY KEY, who text)")
        a.commit()
        a.execute("INSERT INTO t VALUES (1, 'a')")
        assert b.execute("SELECT count(*) FROM t").fetchone() == (0,)  # not committed yet
        b.commit()
        a.commit()
        assert b.execute("SELECT who FROM t").fetchall() == [("a",)]
        b.commit()
        b.execute("INSERT INTO t VALUES (2, 'b')")
        b.commit()
        assert a.execute("SELECT who FROM t ORDER BY id").fetchall() == [("a",), ("b",)]
        a.commit()

    # and truly concurrent writers
    def write(first: int) -> None:
        with postgres_server.connect(database) as conn:
            for i in range(first, first + 50):
                conn.execute("INSERT INTO t VALUES (%s, 'w')", (i,))
                conn.commit()

    threads = [threading.Thread(target=write, args=(start,)) for start in (100, 200, 300)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with postgres_server.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM t WHERE who = 'w'").fetchone() == (150,)


def test_new_database_is_isolated_and_fresh(postgres_server: PostgresServer):
    url_a = postgres_server.new_database("iso_a")
    url_b = postgres_server.new_database("iso_b")
    assert url_a.endswith("/iso_a") and url_b.endswith("/iso_b")
    with postgres_server.connect("iso_a") as conn:
        conn.execute("CREATE TABLE only_in_a (x int)")
        conn.commit()
    with postgres_server.connect("iso_b") as conn:
        assert conn.execute("SELECT to_regclass('only_in_a')").fetchone() == (None,)
    with postgres_server.connect("iso_a") as conn:  # an open connection does not stop it being recreated
        postgres_server.new_database("iso_a")
    with postgres_server.connect("iso_a") as conn:
        assert conn.execute("SELECT to_regclass('only_in_a')").fetchone() == (None,)
    # any test name becomes a valid database name
    odd = postgres_server.new_database("test_x[param-1/Ä]" + "y" * 80)
    name = odd.rsplit("/", 1)[1]
    assert len(name) <= 63
    with postgres_server.connect(name) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (name,)


LOAD_STUDY = """
import sys, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name="x", storage=sys.argv[1])
print(len(study.trials), study.best_value)
study.optimize(lambda trial: (trial.suggest_float("v", -1, 1) - 0.5) ** 2, n_trials=2)
"""


def test_optuna_study_shared_with_another_process(postgres_db: str):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=postgres_db, study_name="x")
    study.optimize(lambda trial: (trial.suggest_float("v", -1, 1) - 0.5) ** 2, n_trials=3)
    best_of_three = study.best_value
    proc = subprocess.run([sys.executable, "-c", LOAD_STUDY, postgres_db], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    count, best = proc.stdout.split()
    assert int(count) == 3 and float(best) == best_of_three
    again = optuna.load_study(study_name="x", storage=postgres_db)
    assert len(again.trials) == 5
    assert len({t.number for t in again.trials}) == 5


def test_not_installed_skips_with_the_reason(tmp_path):
    with pytest.raises(pytest.skip.Exception) as info:
        require_bindir(path="", lib_root=tmp_path)
    assert info.value.msg == SKIP_REASON


def test_finds_the_newest_complete_bindir(tmp_path):
    for version, names in (("9.6", ("initdb", "pg_ctl", "postgres")), ("15", ("initdb", "pg_ctl", "postgres")),
                           ("16", ("initdb", "pg_ctl", "postgres")), ("17", ("initdb", "pg_ctl"))):
        (tmp_path / version / "bin").mkdir(parents=True)
        for name in names:
            exe = tmp_path / version / "bin" / name
            exe.write_text("#!/bin/sh\n")
            exe.chmod(0o755)
    assert find_bindir(path="", lib_root=tmp_path) == tmp_path / "16" / "bin"
    # PATH first (as a symlink, as /usr/local/bin/initdb is on some machines)
    (tmp_path / "path").mkdir()
    (tmp_path / "path" / "initdb").symlink_to(tmp_path / "9.6" / "bin" / "initdb")
    assert find_bindir(path=str(tmp_path / "path"), lib_root=tmp_path) == tmp_path / "9.6" / "bin"


@pytest.fixture(scope="module")
def bindir() -> Path:
    return require_bindir()


def test_stopped_and_removed_even_when_the_body_fails(bindir):
    with pytest.raises(RuntimeError, match="boom"):
        with running_postgres(bindir) as server:
            root, pid = server.root, server.pid
            assert processes_using(root)
            raise RuntimeError("boom")
    assert not root.exists()
    assert not Path(f"/proc/{pid}").exists()
    assert processes_using(root) == []


def our_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("mmp-pg-*"))


def test_a_server_that_does_not_start_fails_with_its_log_not_skips(bindir):
    before = our_folders()
    with pytest.raises(pytest.fail.Exception) as info:
        with running_postgres(bindir, settings={"shared_buffers": "plenty"}):
            pass
    message = str(info.value)
    assert "exited with" in message and 'invalid value for parameter "shared_buffers"' in message, message
    assert our_folders() <= before  # its folder is gone too


KILLED_PARENT = """
import sys, time
from pathlib import Path
from tests.postgres import running_postgres
with running_postgres(Path(sys.argv[1])) as server:
    print(server.root, server.pid, flush=True)
    time.sleep(600)
"""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux) for --pdeathsig")
def test_killed_test_process_leaves_no_server_behind(bindir):
    proc = subprocess.Popen([sys.executable, "-c", KILLED_PARENT, str(bindir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.poll() is not None else "no output"
        root, pid = Path(line.split()[0]), int(line.split()[1])
        assert Path(f"/proc/{pid}").exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert wait_until_gone(root) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if "root" in locals():
            shutil.rmtree(root, ignore_errors=True)


SESSION = """
    from pathlib import Path
    from tests.postgres import postgres_db, postgres_server  # noqa: F401

    def test_uses_it(postgres_server, postgres_db):
        Path("root.txt").write_text(str(postgres_server.root))
        assert postgres_db.endswith("/t_test_uses_it")

    def test_fails(postgres_server):
        assert False, "a failing test must not keep the server alive"
    """


def test_a_pytest_session_leaves_no_postgres_behind(tmp_path, bindir):
    (tmp_path / "test_session.py").write_text(textwrap.dedent(SESSION))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                           "test_session.py"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "1 failed, 1 passed" in proc.stdout, proc.stdout + proc.stderr
    root = Path((tmp_path / "root.txt").read_text())
    assert root.name.startswith("mmp-pg-")
    assert not root.exists()
    assert processes_using(root) == []


def test_a_port_taken_meanwhile_is_retried(bindir, monkeypatch):
    import socket

    import tests.postgres as pg

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = iter([taken.getsockname()[1]])
    real = pg.free_port
    monkeypatch.setattr(pg, "free_port", lambda: next(ports, None) or real())
    try:
        with running_postgres(bindir) as server:
            assert server.port != taken.getsockname()[1]
            with psycopg.connect(server.dsn) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            assert "Address already in use" in server.log.read_text()
    finally:
        taken.close()
