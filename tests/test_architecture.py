"""Imports run one way between apps: the import-linter contracts in pyproject.toml hold.

Run the same check by hand with `.venv/bin/lint-imports` (config in pyproject.toml).
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
APPS = sorted(p.name for p in (ROOT / "anmei").iterdir() if (p / "apps.py").exists())


def test_app_imports_keep_the_layers():
    # given the contracts in pyproject.toml
    # when import-linter checks every module of anmei, imports inside functions included
    # (its own process: in this one zope.interface, loaded by Twisted, trips its option check)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then every contract is kept
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_the_project_never_imports_its_doors():
    # given the import graph of the project, the Celery tasks and the MCP sidecar together
    graph = grimp.build_graph("anmei", "workers", "mcp_server", cache_dir=None)
    # when every import from a module of anmei into workers/ or mcp_server/ is listed
    doors = {m for door in ("workers", "mcp_server") for m in graph.find_descendants(door) | {door}}
    upward = {
        (importer, door)
        for door in doors
        for importer in graph.find_modules_that_directly_import(door)
        if importer == "anmei" or importer.startswith("anmei.")
    }
    # then there are none: a service hands work to a task by its name (send_task or a job row)
    assert upward == set()


def test_no_two_apps_import_each_other():
    # given the import graph of anmei (imports inside functions included)
    graph = grimp.build_graph("anmei", cache_dir=None)
    # when every pair of apps is checked for imports both ways
    cycles = {
        (a, b)
        for a, b in itertools.combinations(APPS, 2)
        if graph.direct_import_exists(importer=f"anmei.{a}", imported=f"anmei.{b}", as_packages=True)
        and graph.direct_import_exists(importer=f"anmei.{b}", imported=f"anmei.{a}", as_packages=True)
    }
    # then there are none: work for an app above is handed over as a job naming its task
    assert cycles == set()


def test_every_hand_off_names_a_registered_task():
    # given the hand-offs by task name that lower apps schedule for the apps above them
    from anmei.accounts.services import REGISTRATION_JOB
    from anmei.blacklist.services import CHANGE_JOB
    from anmei.conversations.services.handoffs import AUTO_REPLY_JOB, DELIVERY_JOB, SUGGEST_TASK, SUMMARY_JOB
    from celery_config import app

    # when the worker's task registry is loaded
    app.loader.import_default_modules()
    # then each names a task the worker runs (a typo would leave the job pending until it is stuck)
    named = {job["task"] for job in (REGISTRATION_JOB, CHANGE_JOB, AUTO_REPLY_JOB, DELIVERY_JOB, SUMMARY_JOB)}
    named.add(SUGGEST_TASK)
    assert named <= set(app.tasks)
