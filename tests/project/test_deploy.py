"""Deployment: the Dockerfile (linted, its install step run from exactly what it copies), the
checked deploy examples, the ConfigMap mount, env vars, and `mmp init` end to end."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO, Server, clean_env, run_mmp, write_configmap

EXAMPLES = REPO / "docs" / "examples"
LOCK, PINS = REPO / "requirements" / "image.txt", REPO / "requirements" / "image-pins.txt"
# The image's platform, where the lock's markers are evaluated.
IMAGE_PLATFORM = {"python_version": "3.11", "python_full_version": "3.11.14", "sys_platform": "linux",
                  "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython",
                  "platform_python_implementation": "CPython", "extra": ""}


@pytest.mark.parametrize("source", ["repository", "mmp init"])
def test_dockerfile_passes_hadolint(source, tmp_path):
    from mmp.project.init import init_project

    if source == "repository":
        dockerfile = REPO / "Dockerfile"
    else:
        init_project(tmp_path / "project")
        dockerfile = tmp_path / "project" / "Dockerfile"
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    proc = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def dockerfile_instructions() -> list[tuple[str | None, str, str]]:
    """(stage, keyword, arguments) for each instruction of the repository's Dockerfile, continued lines joined."""
    found, stage, text = [], None, ""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            text += line[:-1]
            continue
        keyword, _, arguments = (text + line).strip().partition(" ")
        text = ""
        if keyword == "FROM":
            stage = arguments.split(" AS ")[-1].strip()
        if keyword:
            found.append((stage, keyword, arguments.strip()))
    return found


def dockerfile_copies(stage: str) -> list[str]:
    """The source paths of the COPY instructions in one stage of the repository's Dockerfile."""
    sources = []
    for current, keyword, arguments in dockerfile_instructions():
        if keyword == "COPY" and current == stage and "--from=" not in arguments:
            sources += [w for w in arguments.split() if not w.startswith("--")][:-1]
    return sources


def test_image_content_installs_and_runs_from_an_app_folder(tmp_path):
    """No Docker engine here: build the image's content by hand, running the build stage's own RUN lines
    on a copy of exactly what it copies (the venv in a temporary folder, torch's index left out)."""
    context = tmp_path / "context"
    for source in dockerfile_copies("build"):
        src, dest = REPO / source, context / source
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(src, dest)
    extras = re.search(r"ARG EXTRAS=(\S+)", (REPO / "Dockerfile").read_text()).group(1)
    venv = tmp_path / "venv"
    path = os.pathsep.join([str(venv / "bin"), str(Path(sys.executable).parent), os.environ["PATH"]])
    for stage, keyword, command in dockerfile_instructions():
        if stage == "build" and keyword == "RUN":
            command = command.replace("/opt/venv", str(venv)).replace("--extra-index-url https://download.pytorch.org/whl/cpu", "")
            ran = subprocess.run(["sh", "-c", command], cwd=context, env=clean_env(PATH=path, EXTRAS=extras),
                                 capture_output=True, text=True, timeout=900)
            assert ran.returncode == 0, f"{command}\n{ran.stdout[-2000:]}{ran.stderr[-3000:]}"
    app = tmp_path / "app"
    for source in dockerfile_copies("runtime"):
        shutil.copytree(REPO / source, app / source)
    env = clean_env(MMP_CONF_DIR=str(app / "conf"), MMP_RECIPES_DIR=str(app / "recipes"), BENTOML_DO_NOT_TRACK="true")
    mmp = str(venv / "bin" / "mmp")
    assert subprocess.run([mmp, "--help"], cwd=app, env=env, capture_output=True).returncode == 0
    # the runtime stage's own RUN lines as its user would run them (adding a user needs root: not here)
    cache = tmp_path / "cache"
    for stage, keyword, command in dockerfile_instructions():
        if stage == "runtime" and keyword == "RUN" and "useradd" not in command:
            ran = subprocess.run(["sh", "-c", command], cwd=app, capture_output=True, text=True, timeout=300,
                                 env={**env, "PATH": path, "EXTRAS": extras, "MMP_CACHE_DIR": str(cache)})
            assert ran.returncode == 0, f"{command}\n{ran.stdout[-2000:]}{ran.stderr[-3000:]}"
    assert list(cache.glob("*.json")), "the image's compile step left no class facts cache"
    compiled = subprocess.run([mmp, "compile", "-r", str(app / "recipes" / "model.yaml"), "-c", str(app / "conf" / "env" / "prod.yaml")],
                              cwd=app, env=env, capture_output=True, text=True)
    assert compiled.returncode == 0, compiled.stderr
    assert "pipeline breast_cancer" in compiled.stdout
    listed = subprocess.run([mmp, "list", "recipes"], cwd=app, env=env, capture_output=True, text=True)
    assert "boosting/breast_cancer_xgb" in listed.stdout
    # the installed package carries mmp init's templates
    assert subprocess.run([mmp, "init", str(tmp_path / "fresh")], env=env, capture_output=True).returncode == 0
    assert (tmp_path / "fresh" / "conf" / "env" / "prod.yaml").is_file() and (tmp_path / "fresh" / ".dockerignore").is_file()


def locked(text: str) -> dict[str, tuple[str, int]]:
    """Each `name==version` entry of a lock or pins file: canonical name -> (version, number of hashes)."""
    entries, name = {}, None
    for line in text.splitlines():
        if pin := re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line):
            name = canonicalize_name(pin.group(1))
            entries[name] = (pin.group(2), 0)
        elif "--hash=sha256:" in line and name:
            entries[name] = (entries[name][0], entries[name][1] + 1)
    return entries


def locked_extras(text: str) -> list[str]:
    """The extras a lock or pins file was made for, from its `# extras:` header line."""
    return re.search(r"^# extras: (\S+)$", text, re.M).group(1).split(",")


def lock_gaps(pyproject: dict, lock: str) -> list[str]:
    """Each requirement of the build backend, the base dependencies and the lock's extras that the lock
    lacks or pins outside its specifier."""
    optional = pyproject["project"].get("optional-dependencies", {})
    wanted = pyproject["build-system"]["requires"] + pyproject["project"]["dependencies"]
    wanted += [r for extra in locked_extras(lock) for r in optional[extra]]
    versions, gaps, seen = locked(lock), [], set()
    while wanted:
        requirement = Requirement(wanted.pop())
        name = canonicalize_name(requirement.name)
        if str(requirement) in seen or (requirement.marker and not requirement.marker.evaluate(IMAGE_PLATFORM)):
            continue
        seen.add(str(requirement))
        if name == canonicalize_name(pyproject["project"]["name"]):  # mmp[...] inside an extra
            wanted += [r for extra in requirement.extras for r in optional[extra]]
        elif name not in versions:
            gaps.append(f"{requirement} is not locked")
        elif not requirement.specifier.contains(versions[name][0], prereleases=True):
            gaps.append(f"{requirement} but the lock has {versions[name][0]}")
    return gaps


def test_lock_holds_every_dependency_of_the_image_at_an_allowed_version():
    lock = LOCK.read_text()
    assert locked_extras(lock) == re.search(r"ARG EXTRAS=(\S+)", (REPO / "Dockerfile").read_text()).group(1).split(",")
    gaps = lock_gaps(tomllib.loads((REPO / "pyproject.toml").read_text()), lock)
    assert not gaps, f"requirements/image.txt is out of step with pyproject.toml; run scripts/lock.sh: {gaps}"
    versions = locked(lock)
    constraints = locked((REPO / "scripts" / "constraints.txt").read_text())
    assert {n: v for n, (v, _) in constraints.items() if n in versions} == {n: versions[n][0] for n in constraints if n in versions}


def test_a_dependency_added_without_relocking_is_reported():
    lock = LOCK.read_text()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    pyproject["project"]["dependencies"].append("left-pad>=1.0")
    pyproject["project"]["optional-dependencies"]["ml-extras"].append("lightgbm>=999")
    assert sorted(lock_gaps(pyproject, lock)) == ["left-pad>=1.0 is not locked",
                                                  f"lightgbm>=999 but the lock has {locked(lock)['lightgbm'][0]}"]


def test_every_locked_package_has_a_hash_and_none_is_a_cuda_build():
    entries = locked(LOCK.read_text())
    assert [name for name, (_, hashes) in entries.items() if not hashes] == []
    assert [name for name in entries if name == "torch" or re.match(r"nvidia-.*-cu\d+$", name)] == []


def test_install_pins_are_the_lock_without_hashes():
    pins = PINS.read_text()
    assert locked_extras(pins) == locked_extras(LOCK.read_text())
    assert {n: v for n, (v, _) in locked(pins).items()} == {n: v for n, (v, _) in locked(LOCK.read_text()).items()}
    assert "--hash" not in pins
    assert "-c requirements/image-pins.txt" in (REPO / "scripts" / "install.sh").read_text()


def test_base_image_is_pinned_by_digest_in_both_dockerfiles():
    images = {re.search(r"^ARG PYTHON_IMAGE=(\S+)$", path.read_text(), re.M).group(1)
              for path in (REPO / "Dockerfile", REPO / "mmp" / "project" / "template" / "Dockerfile")}
    assert len(images) == 1 and re.fullmatch(r"python:3\.11\.\d+-slim-\w+@sha256:[0-9a-f]{64}", images.pop())
    for path in (REPO / "Dockerfile", REPO / "mmp" / "project" / "template" / "Dockerfile"):
        assert re.findall(r"^FROM (\S+)", path.read_text(), re.M) == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"], path


def dockerignore_admits(path: str) -> bool:
    """Whether .dockerignore lets `path` into the build context: the last pattern matching it or a parent
    folder decides (`*` stays within one folder, `**` crosses them)."""
    parts, admitted = path.strip("/").split("/"), True
    for line in (REPO / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        glob = pattern.lstrip("!").strip("/")
        regex = re.escape(glob).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, "/".join(parts[:i])) for i in range(1, len(parts) + 1)):
            admitted = pattern.startswith("!")
    return admitted


def test_build_context_holds_what_the_dockerfile_copies():
    missing = [source for stage in ("build", "runtime") for source in dockerfile_copies(stage) if not dockerignore_admits(source)]
    assert missing == [], f".dockerignore keeps {missing} out of the build context"


def manifests() -> list[tuple[str, dict]]:
    found = []
    for path in sorted((EXAMPLES / "k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((f"{path.name}:{document['kind']}/{document['metadata']['name']}", document))
    return found


@pytest.mark.parametrize("name, manifest", manifests(), ids=[n for n, _ in manifests()])
def test_kubernetes_manifests_validate(name, manifest):
    import kubernetes_validate

    kubernetes_validate.validate(manifest, "1.30.0", strict=True)


def test_deployment_probes_and_model_run_id():
    deployment = yaml.safe_load((EXAMPLES / "k8s" / "deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    run_id = next(e for e in container["env"] if e["name"] == "MODEL_RUN_ID")
    assert run_id["valueFrom"]["configMapKeyRef"]["key"] == "MODEL_RUN_ID"
    assert container["args"][:3] == ["serve-api", "-c", "/app/conf/env/prod.yaml"]


def test_ci_workflow_parses_and_pushes_to_gcr_and_ecr():
    workflow = yaml.safe_load((EXAMPLES / "ci" / "build-and-push.yaml").read_text())
    assert {"test", "gcr", "ecr"} <= set(workflow["jobs"])
    pushes = [s for job in ("gcr", "ecr") for s in workflow["jobs"][job]["steps"]
              if s.get("uses", "").startswith("docker/build-push-action")]
    assert len(pushes) == 2 and all(s["with"]["push"] for s in pushes)


def test_the_documented_configmap_mounts_as_a_working_conf(project, mmp, monkeypatch, tmp_path):
    documents = list(yaml.safe_load_all((EXAMPLES / "k8s" / "configmap.yaml").read_text()))
    conf_map = next(d for d in documents if d["metadata"]["name"] == "mmp-conf")
    deployment = yaml.safe_load((EXAMPLES / "k8s" / "deployment.yaml").read_text())
    items = deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]
    mount = tmp_path / "app" / "conf"
    write_configmap(mount, "..2026_11_26_12_00_00.1", {item["path"]: conf_map["data"][item["key"]] for item in items})
    shutil.rmtree(project / "conf")
    monkeypatch.setenv("MMP_CONF_DIR", str(mount))
    result = mmp("compile", "recipe=model", "-c", str(mount / "env" / "prod.yaml"))
    assert result.code == 0, result.err
    assert "workers: 2" in result.out and "token_env: MMP_API_TOKEN" in result.out
    # the documented ConfigMap holds today's files, not a stale copy
    assert conf_map["data"]["prod.yaml"] == (REPO / "conf" / "env" / "prod.yaml").read_text()
    assert conf_map["data"]["config.yaml"] == (REPO / "conf" / "config.yaml").read_text()


@pytest.mark.parametrize("variable", ["MODEL_RUN_ID", "CONFIG_PATH", "RECIPE_PATH", "MLFLOW_TRACKING_URI", "MMP_CONF_DIR"])
def test_environment_variables_are_documented_in_one_table(variable):
    for doc in (REPO / "README.md", REPO / "docs" / "deploy.md"):
        assert re.search(rf"^\| `{variable}` \|", doc.read_text(), re.M), f"{variable} missing in {doc.name}"


def test_init_template_matches_the_repository_project():
    template = REPO / "mmp" / "project" / "template"
    for rel in ("conf/config.yaml", "conf/env/local.yaml", "conf/env/dev.yaml", "conf/env/prod.yaml",
                "recipes/model.yaml", "recipes/iris.yaml", "recipes/diabetes.yaml", "recipes/wine_clusters.yaml",
                "recipes/forecast/air_passengers.yaml", "recipes/causal/ihdp.yaml",
                "data/air_passengers.csv", "data/ihdp.csv"):
        assert (template / rel).read_text() == (REPO / rel).read_text(), f"mmp/project/template/{rel} drifted from {rel}"


def test_init_refuses_a_non_empty_folder_without_force(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    result = run_mmp("init", "busy", cwd=tmp_path)
    assert result.code == 2 and "--force" in result.err
    assert run_mmp("init", "busy", "--force", cwd=tmp_path).code == 0
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_init_then_train_batch_predict_and_serve(tmp_path):
    assert run_mmp("init", "churn", cwd=tmp_path).code == 0
    root = tmp_path / "churn"
    for name in ("conf/config.yaml", "conf/env/prod.yaml", "recipes/model.yaml", "data/breast_cancer.csv",
                 "Dockerfile", ".dockerignore", "pyproject.toml", "README.md"):
        assert (root / name).is_file(), name
    env = clean_env(BENTOML_HOME=str(root / "bentoml"))
    for recipe in ("forecast/air_passengers", "causal/ihdp"):  # the new tasks' examples and data ship too
        validated = run_mmp("validate", f"recipe={recipe}", cwd=root, env=env)
        assert validated.code == 0 and "is valid; data data/" in validated.out, validated.err
    trained = run_mmp("train", "recipe=model", "-q", cwd=root, env=env)
    assert trained.code == 0, trained.err
    run_id = trained.out.split()[-1]
    predicted = run_mmp("batch-inference", "--run-id", run_id, "-d", "data/breast_cancer.csv", "-q", cwd=root, env=env)
    assert predicted.code == 0, predicted.err
    assert (root / predicted.out.split()[-1]).is_file()
    srv = Server(root, run_id)
    try:
        srv.wait_ready()
        import pandas as pd

        row = pd.read_csv(root / "data" / "breast_cancer.csv").drop(columns=["id", "diagnosis"]).iloc[0].to_dict()
        answer = httpx.post(f"{srv.url}/predict", json=row, timeout=30).json()
        assert answer["prediction"] in ("benign", "malignant")
    finally:
        assert srv.stop() == 0
