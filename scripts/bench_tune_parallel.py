"""Benchmark: trials per minute of one shared Optuna study run by two `mmp train` processes vs one.

One process runs a study of N trials; then two processes started together share one study of
2N trials through `tune.storage` (a fresh SQLite file per run, or `--postgres URL`) and one
fresh MLflow store. Trials/min = finished trials / wall time of the slowest process (start-up,
refit and logging included). Every process gets OMP_NUM_THREADS=1: one core per worker, like a
k8s pod with `cpu: 1`. Median of N alternating runs; each run checks that the shared study ends
with exactly 2N trials and that exactly one process logged a model; a process that exits non-zero
is printed under its run (CHECK FAILED) and the benchmark goes on. "others" is the CPU the rest of
the machine used meanwhile (other users' jobs; with --postgres, the database server too).

The study: a HistGradientBoostingClassifier (300 rounds) on breast_cancer (stratified split), roc_auc on
validation over learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization; no pruning.

    python scripts/bench_tune_parallel.py [--runs 5] [--trials 40] [--postgres postgresql://u:p@host/db]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import HGB_SEARCH_SPACE, copy_project  # noqa: E402

RECIPE = """
name: bench_tune_parallel
task: classification
data:
  source: data/breast_cancer.csv
  entity_columns: [id]
  target: diagnosis
  split: {strategy: stratified, train: 0.7, validation: 0.15, test: 0.15, seed: 42}
model:
  class_path: sklearn.ensemble.HistGradientBoostingClassifier
  params: {random_state: 0, max_iter: 300}  # ~0.1-1 s a trial with one thread
evaluate:
  metrics: [roc_auc]
  primary_metric: roc_auc
tune:
  pruner: none
  params:
""" + HGB_SEARCH_SPACE
EXPERIMENT = "bench_tune_parallel"


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used since boot (Linux /proc/stat; 0 elsewhere)."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return 0.0
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait


def run_together(commands: list[list[str]], cwd: Path, env: dict) -> tuple[float, float, float, list[int], list[str]]:
    """Start the commands at once: the wall time until the slowest ends, their CPU seconds, the CPU
    seconds everything else on the machine used meanwhile, their pids, and how each failed ('' if not)."""
    logs = [cwd / f"process-{i}.log" for i in range(len(commands))]
    cpu, busy = resource.getrusage(resource.RUSAGE_CHILDREN), machine_busy_seconds()
    outputs = [log.open("w") for log in logs]
    start = time.perf_counter()
    procs = [subprocess.Popen(c, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT) for c, out in zip(commands, outputs)]
    codes = [p.wait(timeout=900) for p in procs]
    wall = time.perf_counter() - start
    for out in outputs:
        out.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    # A failed process is reported in the table, not fatal: the run shows what a user would have seen.
    failures = [f"exit {code}: {log.read_text().strip().splitlines()[-1][:120]}" if code else "" for code, log in zip(codes, logs)]
    return wall, ours, max(0.0, machine_busy_seconds() - busy - ours), [p.pid for p in procs], failures


def check(storage: str, study: str, store: Path, pids: list[int]) -> dict:
    """What the study and the MLflow store hold after a run."""
    import optuna
    from mlflow import MlflowClient

    trials = optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    states = Counter(t.state.name for t in trials)
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    runs = client.search_runs([experiment], max_results=5000)
    parent = [r for r in runs if r.data.tags.get("mmp.tune") == "parent"]
    children = Counter(int(r.data.tags["mmp.pid"]) for r in runs if "mlflow.parentRunId" in r.data.tags)
    models = client.search_logged_models(experiment_ids=[experiment])
    refit_pid = int(parent[0].data.tags.get("mmp.pid", 0)) if len(parent) == 1 else None
    return {"trials": len(trials), "finished": states["COMPLETE"] + states["PRUNED"] + states["FAIL"],
            "complete": states["COMPLETE"], "models": len(models), "refit_by": pids.index(refit_pid) if refit_pid in pids else None,
            "per_process": [children[p] for p in pids]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--trials", type=int, default=40, help="N: trials of the one-process study (the shared one has 2N)")
    parser.add_argument("--postgres", help="an Optuna storage URL (postgresql://...) instead of a SQLite file per run")
    args = parser.parse_args()

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    mmp_exe = str(Path(sys.executable).with_name("mmp"))
    stamp = time.strftime("%Y%m%d%H%M%S")
    load_before = os.getloadavg()
    results: dict[str, list] = {"1 process": [], "2 processes": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        copy_project(work)
        (work / "recipes" / "bench_tune_parallel.yaml").write_text(RECIPE)

        def measure(run: int, processes: int, n_trials: int) -> tuple[float, dict]:
            tag = f"{processes}p-{run}"
            storage = args.postgres or f"sqlite:///{work / f'optuna-{tag}.db'}"
            study, store = f"bench-{stamp}-{tag}", work / f"mlruns-{tag}"
            command = [mmp_exe, "train", "recipe=bench_tune_parallel", "-q", f"tune.n_trials={n_trials}",
                       f"tune.storage={storage}", f"tune.study={study}", f"mlflow.tracking_uri={store}"]
            wall, cpu, others, pids, failures = run_together([command] * processes, work, env)
            return wall, {**check(storage, study, store, pids), "cores": cpu / wall, "others": others / wall,
                          "failures": failures}

        measure(0, 1, 2)  # fills the OS file cache; not counted
        for run in range(1, args.runs + 1):
            results["1 process"].append(measure(run, 1, args.trials))
            results["2 processes"].append(measure(run, 2, 2 * args.trials))
    load_after = os.getloadavg()

    def per_minute(wall: float, seen: dict) -> float:
        return seen["finished"] / wall * 60

    print(f"shared Optuna study ({'PostgreSQL' if args.postgres else 'a fresh SQLite file per run'}), "
          f"HistGradientBoostingClassifier on breast_cancer, {args.runs} alternating runs; "
          f"OMP_NUM_THREADS=1 for every process (one core per worker, like a k8s pod with cpu: 1)")
    print(f"load average before {load_before[0]:.2f} / {load_before[1]:.2f}, after {load_after[0]:.2f} / "
          f"{load_after[1]:.2f} (1 / 5 min) on {os.cpu_count()} cores; python {sys.version.split()[0]}")
    print(f"cores = CPU seconds of the mmp processes / wall (what they got of the {os.cpu_count()}); "
          "others = cores the rest of the machine used meanwhile")
    def cell(wall: float, tpm: float, seen: dict | None = None) -> str:
        return f"{wall:6.2f} s {tpm:6.1f}/min" + (f", cores {seen['cores']:.2f}, others {seen['others']:.2f}" if seen else "")

    print(f"{'run':>4} | {'1 process, N=' + str(args.trials):<46} | {'2 processes, one study of 2N=' + str(2 * args.trials):<46} | "
          f"{'ratio':>5} | trials in the study, per process, refit by, models")
    one_tpm, two_tpm, ok = [], [], True
    for i, ((w1, s1), (w2, s2)) in enumerate(zip(results["1 process"], results["2 processes"]), 1):
        one_tpm.append(per_minute(w1, s1))
        two_tpm.append(per_minute(w2, s2))
        good = (s1["trials"] == args.trials and s1["models"] == 1 and s2["trials"] == 2 * args.trials
                and s2["finished"] == 2 * args.trials and s2["models"] == 1 and s2["refit_by"] is not None
                and not any(s1["failures"] + s2["failures"]))
        ok &= good
        print(f"{i:>4} | {cell(w1, one_tpm[-1], s1):<46} | {cell(w2, two_tpm[-1], s2):<46} | {two_tpm[-1] / one_tpm[-1]:5.2f} | "
              f"{s2['trials']} ({s2['complete']} complete), {'+'.join(map(str, s2['per_process']))}, "
              f"process {s2['refit_by']}, {s2['models']} model(s){'' if good else '  <-- CHECK FAILED'}")
        for label, seen in (("1 process", s1), ("2 processes", s2)):
            for n, failure in enumerate(seen["failures"]):
                if failure:
                    print(f"       {label}: process {n} {failure}")
    one, two = statistics.median(one_tpm), statistics.median(two_tpm)
    walls = [statistics.median(w for w, _ in results[k]) for k in results]
    print(f" med | {cell(walls[0], one):<46} | {cell(walls[1], two):<46} | {two / one:5.2f} | "
          f"trials/min, goal >= 1.7 (median of per-run ratios {statistics.median(b / a for a, b in zip(one_tpm, two_tpm)):.2f})")
    print(f"every process exited 0, every shared study ended with exactly {2 * args.trials} trials and one logged model: {ok}")


if __name__ == "__main__":
    main()
