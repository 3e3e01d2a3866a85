"""An Optuna study that one process runs alone, or that many processes share through a database.

With `tune.storage` (an RDB URL) several `mmp train` processes (pods of a k8s Job) join one
study by name. The process that creates the study enqueues exactly `n_trials` trials and opens
the MLflow parent run; every process claims waiting trials until none is left (the claim is
Optuna's own atomic WAITING -> RUNNING update), so the study holds exactly `n_trials` trials
however many processes join. When no trial is waiting or running, the first process to create
the study's `<name>.mmp-refit` marker (a unique name in the same database, so exactly one wins)
refits the best params; the others exit. Running trials send heartbeats: a trial whose process
died (SIGKILL, node lost) is failed after the grace period, so nobody waits for it forever.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from mmp.errors import UserError

HEARTBEAT_S = 5  # a running trial's process says it is alive this often
GRACE_S = 30  # ... and is declared dead (its trial FAILED) after this long without a word
READY_ATTR = "mmp.parent_run_id"  # set last by the creator: the study is ready to join
SPACE_ATTR = "mmp.search_space"
REFIT_SUFFIX = ".mmp-refit"
JOIN_WAIT_S = 120


@contextmanager
def sqlite_lock(url: str | None) -> Iterator[None]:
    """Hold an inter-process lock beside a SQLite study file (no-op for other storages).

    SQLite ignores the row lock (SELECT ... FOR UPDATE) Optuna's WAITING -> RUNNING claim relies on,
    so two processes could claim one trial (optuna#4002), and two processes creating the tables of a
    fresh file race in Alembic. Processes on one machine, the only place SQLite is shared, take turns
    here instead; PostgreSQL and MySQL lock the row themselves.
    """
    path = _sqlite_file(url)
    if path is None:
        yield
        return
    import fcntl

    with open(f"{path}.mmp-lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _sqlite_file(url: str | None) -> str | None:
    """The database file of a `sqlite:///PATH` URL, else None (other databases, in-memory SQLite)."""
    if not url or not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///"):].split("?", 1)[0]
    return path if path and path != ":memory:" else None


@dataclass
class Study:
    """The Optuna study, its storage, and this process's part in it."""

    optuna_study: Any
    storage: Any
    shared: bool  # in a database other processes may use
    created: bool  # this process created it (and its parent run)
    n_trials: int | None
    url: str | None = None

    @property
    def name(self) -> str:
        return self.optuna_study.study_name

    def claim(self) -> Any:
        """The next trial for this process, or None when the study has all its trials."""
        import optuna
        from optuna.trial import TrialState

        study = self.optuna_study
        if not self.shared or self.n_trials is None:
            if self.n_trials is not None and len(study.get_trials(deepcopy=False)) >= self.n_trials:
                return None
            return study.ask()
        # A fresh Study object per trial: its sampler then reads the trials other processes finished.
        fresh = optuna.load_study(study_name=study.study_name, storage=self.storage,
                                  sampler=study.sampler, pruner=study.pruner)
        study_id = self.storage.get_study_id_from_name(study.study_name)
        with sqlite_lock(self.url):
            for waiting in self.storage.get_all_trials(study_id, deepcopy=False, states=(TrialState.WAITING,)):
                trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, waiting.number)
                try:
                    claimed = self.storage.set_trial_state_values(trial_id, TrialState.RUNNING)
                except optuna.exceptions.UpdateFinishedTrialError:
                    continue  # another process claimed and finished it in between
                if claimed:
                    break
            else:
                return None
        self.optuna_study = fresh
        return optuna.Trial(fresh, trial_id)

    @contextmanager
    def heartbeat(self, trial: Any) -> Iterator[None]:
        """While a trial runs, tell a shared storage this process is alive."""
        if not self.shared:
            yield
            return
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_S):
                try:
                    self.storage.record_heartbeat(trial._trial_id)
                except Exception:  # a database blip: the next beat tries again
                    pass

        self.storage.record_heartbeat(trial._trial_id)
        thread = threading.Thread(target=beat, name="mmp-trial-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=HEARTBEAT_S)

    def wait_for_running(self, progress: Any) -> None:
        """Return once no trial of the study is running (other processes' included)."""
        import optuna
        from optuna.trial import TrialState

        if not self.shared:
            return
        said = False
        while True:
            with warnings.catch_warnings():  # Optuna marks heartbeats experimental; they are in every release since 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(self.optuna_study)
            running = self.optuna_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not running:
                return
            if not said:
                progress.note(f"waiting for {len(running)} trial(s) running in other processes")
                said = True
            time.sleep(1)

    def claim_refit(self) -> bool:
        """True in exactly one of the processes sharing the study: the one that refits."""
        import optuna

        if not self.shared:
            return True
        try:
            optuna.create_study(storage=self.storage, study_name=self.name + REFIT_SUFFIX)
        except optuna.exceptions.DuplicatedStudyError:
            return False
        return True


def storage_for(url: str | None) -> Any:
    """Optuna's storage for `tune.storage`: in memory, or a database with heartbeats."""
    import optuna

    if url is None:
        return optuna.storages.InMemoryStorage()
    engine: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine = {"connect_args": {"timeout": 60}}  # processes take turns writing a SQLite file
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]  # psycopg 3 (mmp[sql-extras]), not psycopg2
    with warnings.catch_warnings():  # heartbeats are marked experimental, and in every release since 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S,
                                          grace_period=GRACE_S)


def open_study(url: str | None, name: str, direction: str, sampler: Any, pruner: Any,
               n_trials: int | None, space: dict[str, Any], shown_url: str) -> Study:
    """Create the study, or join it when another process created it first."""
    import optuna

    try:
        with sqlite_lock(url):  # the first process creates the tables of a fresh file alone
            storage = storage_for(url)
    except Exception as exc:  # unreachable server, wrong password, no such database: the user's to fix
        from mmp.masking import scrub

        reason = scrub(str(getattr(exc, "orig", None) or exc)).strip().splitlines()[0]
        raise UserError(f"tune.storage: cannot open the study storage {shown_url}: {reason}") from exc
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction=direction, sampler=sampler,
                                    pruner=pruner)
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        created = False
    out = Study(study, storage, shared=url is not None, created=created, n_trials=n_trials, url=url)
    if created:
        study.set_user_attr(SPACE_ATTR, json.dumps(space, sort_keys=True, default=str))
        if out.shared and n_trials is not None:
            for _ in range(n_trials):
                study.enqueue_trial({}, skip_if_exists=False)
    else:
        _check_joinable(out, direction, space, shown_url)
    return out


def _check_joinable(study: Study, direction: str, space: dict[str, Any], shown_url: str) -> None:
    """A joining process must search the same space in the same direction as the creator."""
    theirs = json.loads(_wait_for_attr(study, SPACE_ATTR, f"tune.study: study '{study.name}' in {shown_url} was "
                                       "not created by mmp (it has no search space); pick another tune.study"))
    ours = json.loads(json.dumps(space, sort_keys=True, default=str))
    their_direction = study.optuna_study.direction.name.lower()
    if theirs != ours or their_direction != direction:
        differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        raise UserError(f"tune.study: study '{study.name}' in {shown_url} searches a different space "
                        f"(differs in: {', '.join(differ) or 'direction'}); every process of a shared study needs "
                        "the same recipe's tune section, or pick a new tune.study")


def wait_until_ready(study: Study) -> str:
    """The MLflow parent run the creator opened for the study (a joining process waits for it)."""
    return _wait_for_attr(study, READY_ATTR, f"tune.study: study '{study.name}' has no MLflow parent run after "
                          f"{JOIN_WAIT_S} s; the process that created it may have died before starting. "
                          "Pick a new tune.study")


def _wait_for_attr(study: Study, attr: str, error: str) -> str:
    """The study's user attribute `attr`, once its creator has written it; UserError(error) after JOIN_WAIT_S."""
    deadline = time.monotonic() + JOIN_WAIT_S
    while attr not in study.optuna_study.user_attrs:
        if time.monotonic() > deadline:
            raise UserError(error)
        time.sleep(0.5)
    return str(study.optuna_study.user_attrs[attr])
