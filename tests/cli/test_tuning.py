"""Process settings of the ``engscore`` command (``engscore.cli.tuning``)."""

from __future__ import annotations

import json
import subprocess
import sys

from engscore.cli.tuning import JEMALLOC_CONF, tune_process


def test_defaults_on_a_clean_environment() -> None:
    environ: dict[str, str] = {}
    tune_process(environ)
    assert environ["OPENBLAS_NUM_THREADS"] == "1"
    assert environ[JEMALLOC_CONF].startswith("narenas:")


def test_user_settings_win_and_inherited_allocator_settings_are_kept() -> None:
    # A parent process that imported Polars passes Polars' own defaults on.
    environ = {"OPENBLAS_NUM_THREADS": "4", JEMALLOC_CONF: "dirty_decay_ms:500"}
    tune_process(environ)
    assert environ["OPENBLAS_NUM_THREADS"] == "4"
    assert environ[JEMALLOC_CONF].startswith("dirty_decay_ms:500,narenas:")
    chosen = {JEMALLOC_CONF: "narenas:8"}
    tune_process(chosen)
    assert chosen[JEMALLOC_CONF] == "narenas:8"


WATCH_IMPORTS = """
import importlib.abc, json, os, sys
KEYS = ("_RJEM_MALLOC_CONF", "OPENBLAS_NUM_THREADS")
seen = {}
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in ("numpy", "polars") and name not in seen:
            seen[name] = [os.environ.get(k, "") for k in KEYS]
sys.meta_path.insert(0, Watch())
import engscore.cli
print(json.dumps(seen))
"""


def test_the_command_sets_them_before_numpy_and_polars_load() -> None:
    # Both read the settings once, when they load: record them at that moment.
    result = subprocess.run(
        [sys.executable, "-c", WATCH_IMPORTS],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(result.stdout)
    assert set(seen) == {"numpy", "polars"}
    for conf, threads in seen.values():
        assert "narenas:" in conf and threads == "1"
