"""Hand-offs are job rows written in the transaction of their cause; on-commit callbacks only publish.

A callback registered with `transaction.on_commit` runs after the commit, so a kill -9 or a Redis
outage between the commit and the callback loses whatever the callback would have done. The rule
(docs/architecture.md, "Durable jobs"): a callback publishes an existing job's id, pushes a realtime
event, or does nothing — it never writes rows, schedules work or decides whether work happens.
The architecture test below checks every callback in anmei/ against that rule; the fault tests
prove the voice auto-reply (the last hand-off that lived in a callback) survives both faults.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.db import transaction

from anmei.asr.models import AsrTask
from anmei.asr.services import asr_task_process
from anmei.jobs.models import Job
from tests.fixtures_asr import voice_post
from tests.fixtures_automation import free_port
from tests.fixtures_bots import make_bot

ROOT = Path(__file__).resolve().parent.parent

# Calls a callback may not reach: they write rows, schedule work or open a transaction.
FORBIDDEN = {
    "job_schedule",
    "job_reschedule",
    "send_task",
    "apply_async",
    "delay",
    "atomic",
    "select_for_update",
    "get_or_create",
    "update_or_create",
    "bulk_create",
    "admin_alert_raise",
    "reporting_event_record",
}
WRITES = {"create", "update", "delete", "save"}  # on a queryset / model (`objects.create`, `x.save()`)
# Work that is ephemeral by design (a lost one is superseded by the next message): callbacks may ask.
EPHEMERAL = {"suggestion_request"}
PUBLISH = "job_publish"


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _violations_in(call: ast.Call, source: str) -> set[str]:
    """The forbidden call `call` is, if it is one."""
    name = _called_name(call)
    if name is None:
        return set()
    if name in FORBIDDEN or (name.endswith("_schedule") and name != "schedule"):
        return {name}
    if name in WRITES and isinstance(call.func, ast.Attribute):
        target = ast.get_source_segment(source, call.func.value) or ""
        if "objects" in target or name == "save":
            return {f"{target}.{name}"}
    return set()


def _module_of(path: str) -> str:
    return path[: -len(".py")].replace("/", ".").removesuffix(".__init__")


class Callbacks:
    """Every `on_commit` callback of a set of modules, followed through the functions it calls.

    A call is followed where it resolves statically: a function of the same module (nested ones
    included), a name imported from a project module, or `module.function` of an imported project
    module. Method calls on objects are not followed (their writes are caught by name, see WRITES).
    """

    def __init__(self, sources: dict[str, str]) -> None:
        self.sources = sources
        self.trees = {path: ast.parse(text) for path, text in sources.items()}
        self.paths = {_module_of(path): path for path in sources}
        self.defs: dict[str, dict[str, ast.AST]] = {}
        self.imports: dict[str, dict[str, tuple[str, str | None]]] = {}
        for path, tree in self.trees.items():
            defs = self.defs.setdefault(path, {})
            imports = self.imports.setdefault(path, {})
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    defs.setdefault(node.name, node)
                elif isinstance(node, ast.ImportFrom) and node.module:
                    for alias in node.names:
                        imports[alias.asname or alias.name] = (node.module, alias.name)
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        imports[alias.asname or alias.name] = (alias.name, None)

    def _function(self, module: str, name: str) -> tuple[str, ast.AST] | None:
        path = self.paths.get(module)
        if path is None:
            return None
        if name in self.defs[path]:
            return path, self.defs[path][name]
        if name in self.imports[path]:  # re-exported (a package's __init__)
            source, original = self.imports[path][name]
            if original is not None and source != module:
                return self._function(source, original)
        return None

    def _resolve(self, path: str, call: ast.Call) -> tuple[str, ast.AST] | None:
        func = call.func
        if isinstance(func, ast.Name):
            if func.id in self.defs[path]:
                return path, self.defs[path][func.id]
            source, original = self.imports[path].get(func.id, (None, None))
            if source is None:
                return None
            if original is None:
                return None
            return self._function(source, original) or self._function(f"{source}.{original}", func.id)
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            source, original = self.imports[path].get(func.value.id, (None, None))
            if source is None:
                return None
            module = source if original is None else f"{source}.{original}"
            return self._function(module, func.attr)
        return None

    def sites(self) -> list[tuple[str, int, ast.AST]]:
        """(path, line, callback expression) of each `on_commit(callback, ...)` call."""
        found = []
        for path, tree in self.trees.items():
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and _called_name(node) == "on_commit" and node.args:
                    found.append((path, node.lineno, node.args[0]))
        return found

    def reached(self, callback: ast.AST, path: str) -> tuple[set[str], set[str]]:
        """(forbidden calls reached, job_publish/ephemeral entry points reached) from a callback."""
        roots: list[tuple[str, ast.AST]] = []
        if isinstance(callback, ast.Lambda):
            roots.append((path, callback.body))
        elif isinstance(callback, ast.Name) and callback.id in self.defs[path]:
            roots.append((path, self.defs[path][callback.id]))
        bad: set[str] = set()
        entry: set[str] = set()
        seen: set[int] = set()
        while roots:
            where, node = roots.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
                name = _called_name(call)
                if name in (PUBLISH, *EPHEMERAL):
                    entry.add(name)
                    continue
                if name == "on_commit":
                    continue
                bad |= _violations_in(call, self.sources[where])
                target = self._resolve(where, call)
                if target is not None:
                    roots.append(target)
        return bad, entry

    def offenders(self) -> dict[str, set[str]]:
        out = {}
        for path, line, callback in self.sites():
            bad, _ = self.reached(callback, path)
            if bad:
                out[f"{path}:{line}"] = bad
        return out


def _project_sources() -> dict[str, str]:
    sources = {}
    for path in sorted((ROOT / "anmei").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if "/migrations/" in rel or "/tests/" in rel:
            continue
        sources[rel] = path.read_text()
    return sources


def test_every_on_commit_callback_only_publishes_a_job_or_pushes():
    # given every module of anmei
    callbacks = Callbacks(_project_sources())
    # when each on-commit callback is followed through the functions it calls
    sites = callbacks.sites()
    # then there are callbacks (the check sees them), and none writes, schedules or decides work
    assert len(sites) >= 10
    assert callbacks.offenders() == {}


def test_the_callback_check_flags_a_callback_that_does_more():
    # given the rule's bad and good lines (the checker must see what it is there to catch)
    bad = (
        "from django.db import transaction\n"
        "def _hand_off(message):\n"
        "    if online_user_ids(tenant_id=1):\n"
        "        return\n"
        "    with transaction.atomic():\n"
        "        auto_reply_schedule(message=message)\n"
        "def _note(pk):\n"
        "    Alert.objects.create(pk=pk)\n"
        "def store(message, job):\n"
        "    transaction.on_commit(lambda: _hand_off(message), robust=True)\n"
        "    transaction.on_commit(lambda: _note(1))\n"
        "    transaction.on_commit(lambda: job_publish(job=job))\n"
        "    transaction.on_commit(lambda: realtime.broadcast_to_console(1, {}))\n"
    )
    # when the checker reads it
    offenders = Callbacks({"bad.py": bad}).offenders()
    # then the hand-off and the row write are flagged, the publish and the push are not
    assert offenders == {"bad.py:10": {"atomic", "auto_reply_schedule"}, "bad.py:11": {"Alert.objects.create"}}


# --- the voice auto-reply under faults -------------------------------------------------------


@pytest.fixture
def voice_waiting(transactional_db, tenant_a, asr_api, speech_wav):
    """A stored voice message from an IM customer nobody serves, its transcription not run yet."""
    _bot, token, _ = make_bot(tenant_a, callback_url="http://127.0.0.1:9/alpha")
    response = voice_post(token, speech_wav, "v-fault")
    assert response.status_code == 202, response.content
    return AsrTask.objects.get(asr_task_id=response.json()["asr_task_id"])


def _auto_reply_jobs(task: AsrTask) -> list[tuple[str, str]]:
    jobs = Job.objects.filter(kind="bots.auto_reply", key=f"message:{task.message_id}")
    return list(jobs.values_list("kind", "state"))


@pytest.mark.django_db(transaction=True)
def test_voice_auto_reply_job_commits_with_the_transcript(voice_waiting):
    # given a voice message waiting for its transcript (no auto-reply job yet: the transcript feeds it)
    assert _auto_reply_jobs(voice_waiting) == []
    # when the transcript is recorded and the process dies before any on-commit callback runs
    # (the outer transaction holds the callbacks back; what it holds is what the commit holds)
    with transaction.atomic():
        asr_task_process(asr_task_id=voice_waiting.asr_task_id)
        in_the_commit = _auto_reply_jobs(voice_waiting)
        transaction.set_rollback(False)
    # then the auto-reply job is part of the transcript's commit
    assert in_the_commit == [("bots.auto_reply", "pending")]


@pytest.mark.django_db(transaction=True)
def test_voice_auto_reply_is_scheduled_with_redis_down(voice_waiting, settings):
    # given Redis unreachable when the transcript is recorded (presence and broker both there)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_URL = dead
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # when the attempt succeeds
    done = asr_task_process(asr_task_id=voice_waiting.asr_task_id)
    # then the customer's auto-reply is a durable job row (the sweep publishes it once Redis is back)
    assert done.status == "success"
    assert _auto_reply_jobs(voice_waiting) == [("bots.auto_reply", "pending")]
