"""A real, throwaway PostgreSQL server for the tests: `postgres_server` (one per session) and `postgres_db`.

`postgres_server` finds the server binaries, `initdb`s a cluster in a fresh temporary folder, starts
`postgres` on a free port on 127.0.0.1 (its unix socket in that folder too, never in a shared one),
with password (scram-sha-256) login for the superuser `mmp` and a database `mmp`, and yields a
`PostgresServer`: `.url` (SQLAlchemy, for Optuna), `.dsn` (libpq / psycopg), `.new_database(name)`.
At the end of the session it stops the server (`pg_ctl stop -m fast`) and removes the folder, also
when a test failed; if the test process itself is killed, the postmaster gets SIGQUIT from the kernel
(`setpriv --pdeathsig`) instead of lingering.

initdb and postgres refuse to run as root: as root, they run as the `postgres` user (which Debian's
package creates) or else `nobody`, and the folder is theirs.

The tests skip only when no PostgreSQL server is installed (`SKIP_REASON`); a server that is there but
does not start fails them, with the tail of its log.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

BINARIES = ("initdb", "pg_ctl", "postgres")
LIB_ROOT = Path("/usr/lib/postgresql")
USER = "mmp"
DATABASE = "mmp"
HOST = "127.0.0.1"
SKIP_REASON = ("PostgreSQL server not installed: no initdb, pg_ctl and postgres on PATH, in `pg_config --bindir` "
               "or in /usr/lib/postgresql/*/bin (Debian: apt-get install postgresql; .ci/run does it as root or with sudo)")
# A throwaway cluster: durability is not wanted, speed is.
SETTINGS = {
    "listen_addresses": HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}
START_TIMEOUT = 60.0
PORT_TRIES = 3


def _has_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) and (directory / name).is_file() for name in BINARIES)


def _version_key(directory: Path) -> tuple:
    """/usr/lib/postgresql/15/bin -> (15,); 9.6 -> (9, 6); non-numeric names sort last."""
    parts = re.findall(r"\d+", directory.parent.name)
    return tuple(int(p) for p in parts) if parts else (-1,)


def find_bindir(path: str | None = None, lib_root: Path = LIB_ROOT) -> Path | None:
    """The folder holding initdb, pg_ctl and postgres: from PATH, then `pg_config --bindir`, then
    `lib_root`/*/bin, newest version first. None when there is none."""
    candidates: list[Path] = []
    initdb = shutil.which("initdb", path=path)
    if initdb:  # /usr/local/bin/initdb may be a symlink into the real bindir, which holds the others
        candidates += [Path(os.path.realpath(initdb)).parent, Path(initdb).parent]
    pg_config = shutil.which("pg_config", path=path)
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=30)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted(lib_root.glob("*/bin"), key=_version_key, reverse=True)
    return next((c for c in candidates if _has_binaries(c)), None)


def require_bindir(path: str | None = None, lib_root: Path = LIB_ROOT) -> Path:
    """`find_bindir`, or skip the test with `SKIP_REASON`."""
    bindir = find_bindir(path, lib_root)
    if bindir is None:
        pytest.skip(SKIP_REASON)
    return bindir


def server_account() -> pwd.struct_passwd | None:
    """Whom initdb/postgres run as: None (this process's user) unless we are root, then `postgres` or `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.fail("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as "
                "(initdb and postgres refuse to run as root)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def _safe_name(name: str) -> str:
    """A test name or anything else -> a valid, unquoted-safe database name (<= 63 bytes)."""
    safe = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "db"
    if safe[0].isdigit():
        safe = f"db_{safe}"
    if len(safe) > 63:
        import hashlib

        safe = f"{safe[:54]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return safe


@dataclass
class PostgresServer:
    """A running throwaway server. `.url`/`.dsn` point at database `mmp`; `url_for`/`dsn_for` at another."""

    bindir: Path
    root: Path
    port: int
    password: str
    pid: int
    host: str = HOST
    user: str = USER
    database: str = DATABASE

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver), e.g. Optuna's `storage=`."""
        return f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def dsn_for(self, database: str) -> str:
        """libpq connection URI, for `psycopg.connect`."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    @property
    def dsn(self) -> str:
        return self.dsn_for(self.database)

    def connect(self, database: str | None = None, **kwargs):
        import psycopg

        return psycopg.connect(self.dsn_for(database or self.database), connect_timeout=10, **kwargs)

    def new_database(self, name: str | None = None) -> str:
        """Create an empty database (dropped first if it exists: always fresh) and return its SQLAlchemy URL.
        `name` may be anything (a test's node name): it is reduced to [a-z0-9_], 63 bytes at most."""
        from psycopg import sql

        name = _safe_name(name or f"db_{secrets.token_hex(4)}")
        with self.connect("postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)


class _Runner:
    """Runs the PostgreSQL programs as the account that owns the cluster."""

    def __init__(self, bindir: Path, root: Path, account: pwd.struct_passwd | None):
        self.bindir, self.root, self.account = bindir, root, account
        # libpq/PostgreSQL settings from the caller's environment must not leak into the cluster
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        self.env.update(LC_ALL="C", LANG="C")
        if account is not None:
            self.env.update(HOME=str(root), USER=account.pw_name, LOGNAME=account.pw_name)

    def kwargs(self) -> dict:
        kw: dict = {"cwd": self.root, "env": self.env}
        if self.account is not None:
            kw.update(user=self.account.pw_uid, group=self.account.pw_gid, extra_groups=[])
        return kw

    def run(self, program: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bindir / program), *args], capture_output=True, text=True,
                              timeout=timeout, **self.kwargs())

    def chown(self, path: Path) -> None:
        if self.account is not None:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def processes_using(path: Path) -> list[str]:
    """`pid cmdline` of every process whose command line names `path` (`pgrep -f`, without needing procps)."""
    needle = str(path)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if needle in cmdline and int(entry.name) != os.getpid():
            found.append(f"{entry.name} {cmdline}")
    return found


def _stop(runner: _Runner, proc: subprocess.Popen, datadir: Path) -> None:
    """`pg_ctl stop -m fast`; if that does not do it, SIGQUIT (immediate), then SIGKILL."""
    if proc.poll() is None:
        try:
            runner.run("pg_ctl", "stop", "-D", str(datadir), "-m", "fast", "-w", "-t", "30", timeout=45)
        except (OSError, subprocess.SubprocessError):
            pass
    for sig, wait in ((None, 15), (signal.SIGQUIT, 10), (signal.SIGKILL, 10)):
        if sig is not None and proc.poll() is None:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # backends notice the postmaster is gone and exit on their own; give them a moment
    deadline = time.monotonic() + 10
    while processes_using(datadir) and time.monotonic() < deadline:
        time.sleep(0.1)


@contextmanager
def running_postgres(bindir: Path, settings: Mapping[str, str] | None = None,
                     start_timeout: float = START_TIMEOUT) -> Iterator[PostgresServer]:
    """Start a throwaway cluster with the binaries in `bindir`; stop it and remove its folder on exit.
    Raises pytest's Failed (never Skipped) when it cannot be set up or started."""
    import psycopg

    account = server_account()
    root = Path(tempfile.mkdtemp(prefix="mmp-pg-"))  # short: the unix socket path must fit in 107 bytes
    runner = _Runner(bindir, root, account)
    proc: subprocess.Popen | None = None
    log_file = None
    try:
        runner.chown(root)
        os.chmod(root, 0o700)
        password = secrets.token_urlsafe(24)  # [A-Za-z0-9_-]: safe in URLs and DSNs as it is
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        os.chmod(pwfile, 0o600)
        runner.chown(pwfile)
        datadir = root / "data"
        init = runner.run("initdb", "-D", str(datadir), "-U", USER, f"--pwfile={pwfile}", "-A", "scram-sha-256",
                          "-E", "UTF8", "--locale=C", "-N")
        pwfile.unlink()
        if init.returncode != 0:
            pytest.fail(f"initdb ({bindir}) failed with exit {init.returncode}"
                        f"{f' as user {account.pw_name}' if account else ''}:\n{(init.stdout + init.stderr)[-4000:]}")
        conf = {**SETTINGS, "unix_socket_directories": str(root), **(settings or {})}
        with open(datadir / "postgresql.conf", "a") as f:
            f.write("\n# mmp tests (tests/postgres.py)\n")
            f.writelines(f"{key} = '{value}'\n" for key, value in conf.items())

        log = root / "server.log"
        log_file = open(log, "ab")
        runner.chown(log)
        # The kernel sends the postmaster SIGQUIT if this process dies without stopping it.
        pdeath = ["setpriv", "--pdeathsig", "SIGQUIT", "--"] if shutil.which("setpriv") else []
        for attempt in range(1, PORT_TRIES + 1):
            port = free_port()
            proc = subprocess.Popen([*pdeath, str(bindir / "postgres"), "-D", str(datadir), "-p", str(port)],
                                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                    start_new_session=True, **runner.kwargs())
            dsn = f"host={HOST} port={port} user={USER} password={password} dbname=postgres connect_timeout=2"
            deadline = time.monotonic() + start_timeout
            error: Exception | None = None
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                try:
                    with psycopg.connect(dsn, autocommit=True) as conn:
                        conn.execute(f'CREATE DATABASE "{DATABASE}"')
                    error = None
                    break
                except psycopg.OperationalError as exc:
                    error = exc
                    time.sleep(0.1)
            else:
                _stop(runner, proc, datadir)
                pytest.fail(f"PostgreSQL ({bindir}) did not accept connections on {HOST}:{port} within "
                            f"{start_timeout:.0f} s (last error: {error}); server log:\n{_tail(log)}")
            if proc.poll() is None and error is None:
                break
            log_file.flush()
            if "Address already in use" in _tail(log, 10) and attempt < PORT_TRIES:
                _stop(runner, proc, datadir)
                continue  # another process took the port between free_port() and bind()
            _stop(runner, proc, datadir)
            pytest.fail(f"PostgreSQL ({bindir}) exited with {proc.returncode} while starting on {HOST}:{port}; "
                        f"server log:\n{_tail(log)}")
        yield PostgresServer(bindir=bindir, root=root, port=port, password=password, pid=proc.pid)
    finally:
        if proc is not None:
            _stop(runner, proc, root / "data")
        if log_file is not None:
            log_file.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole session (see the module docstring)."""
    with running_postgres(require_bindir()) as server:
        yield server


@pytest.fixture
def postgres_db(postgres_server: PostgresServer, request) -> str:
    """A fresh, empty database for this test, named after it: its SQLAlchemy URL."""
    return postgres_server.new_database(f"t_{request.node.name}")
