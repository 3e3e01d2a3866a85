"""The class facts of earlier runs, so `mmp compile` and `mmp validate` need not import scikit-learn.

One JSON file per Python interpreter in $MMP_CACHE_DIR, else $XDG_CACHE_HOME/mmp, else ~/.cache/mmp.
An entry is trusted only while all it was read from is unchanged: the class's top-level package and
every package its import loaded (numpy, scipy, ... for scikit-learn) still resolve to the same
files, and every source file along the class's MRO (with its module, its packages and mmp's own
fact-reading code) has the same size and modification time. A missing, unreadable or corrupt
file, a checksum that does not match or one changed file is a miss, and the caller imports the
class as before. Writes are atomic (a temporary file renamed into place); a cache folder that
cannot be written is not an error, only a slower next run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import zlib
from pathlib import Path
from typing import Any

from mmp.config.class_facts import ClassFacts

FORMAT = 1  # bump when ClassFacts' JSON changes shape
NO_FILE = "(no file)"  # where a namespace or built-in package is
log = logging.getLogger(__name__)
_read: dict[Path | None, dict[str, Any]] = {}  # each cache file as read once per process
_searched: dict[str, str | None] = {}  # where sys.path has each package not imported yet, once per process


def cache_file() -> Path | None:
    """This interpreter's cache file, or None when no cache folder can be named."""
    folder = os.environ.get("MMP_CACHE_DIR")
    if not folder:
        try:
            folder = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mmp")
        except (RuntimeError, KeyError):  # no home directory to speak of
            return None
    interpreter = zlib.crc32(f"{sys.executable}\n{sys.version}".encode())
    return Path(folder) / f"class-facts-{FORMAT}-{interpreter:08x}.json"


def read(class_path: str) -> ClassFacts | None:
    """The cached facts of `class_path`, or None when there are none this process can trust."""
    path = cache_file()
    if path not in _read:
        _read[path] = _load(path)
    entry = _read[path].get(class_path)
    if not isinstance(entry, dict) or not _still_valid(entry):
        return None
    try:
        return ClassFacts.from_json(entry["facts"])
    except (KeyError, TypeError, ValueError):
        return None


def write(facts: ClassFacts, needs: set[str]) -> None:
    """Keep `facts` (read from the live class) for later runs, valid while the top-level packages in
    `needs` (the class's own and what importing it loaded) stay where they are; silently skipped
    when that cannot be done."""
    path = cache_file()
    key = _key(facts, needs)
    if path is None or key is None:
        return
    entries = {name: entry for name, entry in _load(path).items() if isinstance(entry, dict) and _still_valid(entry)}
    entry = {**key, "facts": facts.to_json()}
    entries[facts.class_path] = {**entry, "sum": _checksum(entry)}
    tmp = None
    try:
        import tempfile

        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(entries, f)
        os.replace(tmp, path)
        _read[path] = entries
    except (OSError, TypeError, ValueError) as exc:  # read-only home, full disk, a value JSON cannot hold
        log.debug("class facts cache not written to %s: %s", path, exc)
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def _load(path: Path | None) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text()) if path else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _key(facts: ClassFacts, needs: set[str]) -> dict[str, Any] | None:
    """What the facts were read from: where each needed package is, and the stamp of every source file."""
    cls = facts.cls
    if cls is None:
        return None
    module_name = facts.class_path.rpartition(".")[0]
    names = {k.__module__ for k in cls.__mro__} - {"builtins"}
    parts = module_name.split(".")
    names |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}  # the module and each package above it
    names |= {__name__, "mmp.config.class_facts", "mmp.config.estimators"}
    if facts.constraints is not None:
        names.add("sklearn.utils._param_validation")  # what the portable constraints were translated from
    files = {getattr(sys.modules.get(name), "__file__", None) for name in names}
    packages = sorted(name for name in needs if name not in sys.stdlib_module_names  # the standard library stays
                      and getattr(getattr(sys.modules.get(name), "__spec__", None), "name", None) == name)
    places = [[name, _origin(name)] for name in packages]
    files |= {place for _, place in places if place not in (None, NO_FILE)}
    if None in files or [parts[0], None] in places:  # a module that is not a file: nothing to tell a change by
        return None
    stamps = [_stamp(f) for f in sorted(files)]
    if None in stamps:
        return None
    return {"needs": places, "files": stamps}


def _still_valid(entry: dict[str, Any]) -> bool:
    try:
        if entry["sum"] != _checksum({k: v for k, v in entry.items() if k != "sum"}):
            return False
        return (all(_origin(name) == place for name, place in entry["needs"])
                and all(_stamp(stamp[0]) == stamp for stamp in entry["files"]))
    except (KeyError, TypeError, IndexError, ValueError):
        return False


def _origin(name: str) -> str | None:
    """The file `import name` would run (NO_FILE for a package without one), found without running
    anything; None when it is not installed (or blocked in sys.modules)."""
    import importlib.util

    if name not in sys.modules and name in _searched:
        return _searched[name]
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    origin = None if spec is None else spec.origin if spec.has_location and spec.origin else NO_FILE
    if name not in sys.modules:  # a search of sys.path: entries share their packages, so search once
        _searched[name] = origin
    return origin


def _stamp(path: str) -> list[Any] | None:
    try:
        stat = os.stat(path)
    except (OSError, TypeError, ValueError):
        return None
    return [path, stat.st_mtime_ns, stat.st_size]


def _checksum(entry: dict[str, Any]) -> int:
    return zlib.crc32(json.dumps(entry, sort_keys=True).encode())
