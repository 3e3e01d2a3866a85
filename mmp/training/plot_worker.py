"""Draw a run's plots in a forked process, so that drawing overlaps with MLflow's logging.

Matplotlib costs ~0.3 s to import and ~0.3 s to draw and encode a run's PNGs: CPU work that in the
training process would hold the GIL (a thread would not overlap it) and add to every `mmp train`.
`PlotWorker.start()`, called as the pipeline starts, forks a child that imports matplotlib on the
other core while this process imports MLflow, reads the data and fits; the Log stage hands it the
test split's predictions, logs params, metrics and the model meanwhile, and then uploads the PNGs
the child wrote. The PNGs are the files `mlflow.log_figure` would have written (`plots.render`).

Only on Linux, where fork is cheap and safe for this (the child imports, draws and writes files; it
never touches MLflow, the data source or the parent's threads, and leaves with `os._exit`, running
none of the parent's exit handlers). Elsewhere `render` draws in this process, as before.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import tempfile
from typing import Any


class PlotWorker:
    """A forked child waiting for one job: the arguments of `plots.render`. Close it when done."""

    def __init__(self, pid: int, jobs: int, results: int, folder: str):
        self.pid, self.jobs, self.results, self.folder = pid, jobs, results, folder
        self.submitted = False

    @classmethod
    def start(cls) -> "PlotWorker | None":
        """Fork the worker (it starts importing matplotlib); None where plots are drawn in-process."""
        if not sys.platform.startswith("linux"):
            return None
        folder = tempfile.mkdtemp(prefix="mmp-plots-")
        jobs_read, jobs_write = os.pipe()
        results_read, results_write = os.pipe()
        sys.stdout.flush()  # what is buffered now would otherwise be written twice
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns, never runs the parent's exit handlers
            status = 1
            try:
                os.close(jobs_write)
                os.close(results_read)
                status = _serve(jobs_read, results_write, folder)
            finally:
                os._exit(status)
        os.close(jobs_read)
        os.close(results_write)
        return cls(pid, jobs_write, results_read, folder)

    def submit(self, *args: Any, **kwargs: Any) -> None:
        """Hand the worker `plots.render`'s arguments (after the folder); it draws while we go on."""
        data = pickle.dumps((args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(self.jobs, "wb") as pipe:  # closing it tells the worker the job is complete
            self.jobs = -1
            pipe.write(data)
        self.submitted = True

    def result(self) -> list[str]:
        """Wait for the worker: the names of the PNGs it wrote in `folder`. Its drawing error is raised here."""
        with os.fdopen(self.results, "rb") as pipe:
            self.results = -1
            data = pipe.read()
        self._reap()
        if not data:
            raise RuntimeError("the plot worker process ended before drawing the plots")
        outcome, value = pickle.loads(data)
        if outcome == "error":
            raise value
        return value

    def close(self) -> None:
        """Stop the worker if it still runs, and remove its folder (safe to call more than once)."""
        for fd in (self.jobs, self.results):
            if fd >= 0:
                os.close(fd)  # an unsubmitted worker reads end-of-file and leaves
        self.jobs = self.results = -1
        if self.pid and self.submitted:
            try:
                os.kill(self.pid, 9)  # drawing what nobody will log: stop it now
            except ProcessLookupError:
                pass
        self._reap()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _reap(self) -> None:
        if self.pid:
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.pid = 0


def render(worker: PlotWorker | None, folder: str, *args: Any, **kwargs: Any) -> list[str]:
    """`plots.render` into `folder`: by the worker if there is one (its folder, then moved), else here."""
    from mmp.training import plots

    if worker is None:
        return plots.render(folder, *args, **kwargs)
    names = worker.result()
    for name in names:
        shutil.move(os.path.join(worker.folder, f"{name}.png"), os.path.join(folder, f"{name}.png"))
    return names


def _serve(jobs: int, results: int, folder: str) -> int:
    """The child: import what drawing needs, wait for the job, draw it, answer (names or the error)."""
    import signal
    import threading
    import traceback

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    received: list[bytes] = []

    def receive() -> None:  # drain the pipe while importing, so a large job never blocks the parent
        with os.fdopen(jobs, "rb") as pipe:
            received.append(pipe.read())

    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    from mmp.training import plots

    _preload()
    reader.join()
    if not received or not received[0]:  # no job: the parent closed the worker, or was killed
        shutil.rmtree(folder, ignore_errors=True)
        return 0
    try:
        args, kwargs = pickle.loads(received[0])
        answer = ("ok", plots.render(folder, *args, **kwargs))
    except BaseException as exc:  # noqa: BLE001 - every drawing error goes back to the parent
        exc.add_note("in mmp's plot worker process:\n" + "".join(traceback.format_exception(exc)).rstrip())
        answer = ("error", exc)
    try:
        data = pickle.dumps(answer)
        pickle.loads(data)
    except Exception:  # an exception that does not pickle: its type, message and where
        text = "".join(traceback.format_exception(answer[1])).rstrip()
        data = pickle.dumps(("error", RuntimeError(f"the plot worker failed:\n{text}")))
    try:
        with os.fdopen(results, "wb") as pipe:
            pipe.write(data)
    except OSError:  # the parent is gone (killed): nobody will upload or remove the PNGs
        shutil.rmtree(folder, ignore_errors=True)
        return 1
    return 0


def _preload() -> None:
    """Import matplotlib (Agg) and scikit-learn's displays before the job arrives: the slow part."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import sklearn.metrics  # noqa: F401  (ConfusionMatrixDisplay, RocCurveDisplay)
