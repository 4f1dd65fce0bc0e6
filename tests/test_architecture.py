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
    # and a renamed task keeps its old name for the rows and messages written before the rename
    assert "workers.bots.auto_reply" in app.tasks


def test_no_import_cycle_between_any_two_modules():
    # given the import graph of every module of the project, the tasks and the sidecar
    graph = grimp.build_graph("anmei", "workers", "mcp_server", cache_dir=None)
    # when its strongly connected components are found (Tarjan, iteratively)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[set[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(component)
    # then there is none: not between apps, not inside an app, not between a package and its modules
    assert cycles == []


def test_every_task_is_declared_one_way_and_leases_its_job_through_job_task():
    # given the task modules
    sources = {p.name: p.read_text() for p in (ROOT / "workers").glob("*.py")}
    # then no task declares itself outside the one Celery app, and only workers/base.py leases a job
    assert [name for name, text in sources.items() if "shared_task" in text] == []
    assert [name for name, text in sources.items() if "job_lease(" in text and name != "base.py"] == []
