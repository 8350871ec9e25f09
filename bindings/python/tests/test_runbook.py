"""Runbook: loading, parsing and planning, as `runward runbook plan` does it."""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path
from types import MappingProxyType

import pytest

import runward

SEED = Path(__file__).resolve().parents[3] / "examples" / "runbooks" / "controlled-restart.toml"
URL = {"service_url": "http://127.0.0.1:9000"}

TYPED = """\
[runbook]
name = "scale"

[params.workers]
type = "integer"
default = 4

[params.dry]
type = "boolean"

[[steps]]
id = "scale"
kind = "command"
argv = ["scale", "{{ params.workers }}", "{{ params.dry }}"]
"""

SECRET = """\
[runbook]
name = "rotate"

[params.token]
type = "secret"
env = "RUNWARD_PY_TEST_TOKEN"

[[steps]]
id = "call"
kind = "http"
url = "https://api.example.com/rotate"
headers = { Authorization = "Bearer {{ params.token }}" }
"""


@pytest.fixture
def seed() -> runward.Runbook:
    return runward.Runbook.load(SEED)


def test_load_reads_the_seed_runbook(seed: runward.Runbook) -> None:
    assert seed.name == "controlled-restart"
    assert seed.step_ids == ["set-restarting", "drain", "restart", "clear-restarting", "validate-ready"]
    assert seed.path == str(SEED)
    assert re.fullmatch(r"[0-9a-f]{64}", seed.definition_hash)
    assert runward.Runbook.load(str(SEED)).definition_hash == seed.definition_hash
    assert repr(seed) == "<Runbook \"controlled-restart\" (5 steps)>"


def test_parse_without_a_path(seed: runward.Runbook) -> None:
    rb = runward.Runbook.parse(SEED.read_text())
    assert rb.path is None
    assert rb.definition_hash == seed.definition_hash
    commented = runward.Runbook.parse("# a comment only\n" + SEED.read_text(), path="restart.toml")
    assert commented.path == "restart.toml"
    assert commented.definition_hash == seed.definition_hash, "comments do not change the definition"


def test_plan_resolves_parameters(seed: runward.Runbook) -> None:
    plan = seed.plan(URL)
    assert set(plan) == {"runbook", "definition_hash", "params", "requires", "steps", "on_cancel", "digest"}
    assert plan["runbook"] == "controlled-restart"
    assert plan["definition_hash"] == seed.definition_hash
    assert plan["params"] == {"service_url": "http://127.0.0.1:9000", "restart_command": "systemctl restart jarvis"}
    assert plan["requires"] == {"absent": ["lockdown"], "present": []}
    assert plan["on_cancel"] == []
    steps = plan["steps"]
    assert len(steps) == 5
    assert [s["index"] for s in steps] == [1, 2, 3, 4, 5]
    assert [s["id"] for s in steps] == seed.step_ids
    assert [s["kind"] for s in steps] == ["flag", "drain", "command", "flag", "gate"]
    gate = steps[4]
    assert "http://127.0.0.1:9000/readyz answers 2xx 3 times in a row" in gate["effect"], gate["effect"]
    assert "http://127.0.0.1:9000/internal/inflight" in steps[1]["effect"]
    assert steps[0]["compensation"] == "clear flag `restarting`"
    assert "compensation" not in steps[3]
    assert steps[0]["title"] == "Announce the restart"
    restart = steps[2]["policy"]
    assert restart["retries"] == 1
    assert restart["timeout"] == "30s"
    assert restart["backoff"] == "2s"
    assert restart["outcome_unknown"] == {"probe_first": "api"}
    assert steps[1]["policy"]["on_failure"] == "continue"
    assert re.fullmatch(r"[0-9a-f]{64}", plan["digest"])


def test_defaults_apply_without_params(seed: runward.Runbook) -> None:
    for params in (None, {}):
        plan = seed.plan(params)
        assert plan["params"]["service_url"] == "http://127.0.0.1:8000"
    assert seed.plan() == seed.plan({})


def test_the_digest_covers_the_params(seed: runward.Runbook) -> None:
    a = seed.plan(URL)
    b = seed.plan({"service_url": "http://127.0.0.1:9001"})
    assert a["digest"] != b["digest"]
    assert a["definition_hash"] == b["definition_hash"] == seed.definition_hash
    assert seed.plan(URL)["digest"] == a["digest"], "a plan is deterministic"


def test_plan_text_is_the_cli_rendering(seed: runward.Runbook) -> None:
    plan = seed.plan(URL)
    text = seed.plan_text(URL)
    assert text.startswith(f"plan for runbook `controlled-restart` (definition {seed.definition_hash[:12]})\n")
    assert "     undo: clear flag `restarting`\n" in text
    assert "requires flags absent: lockdown\n" in text
    assert "  5. validate-ready [gate] wait until http://127.0.0.1:9000/readyz answers 2xx" in text
    assert text.endswith(f"digest: {plan['digest']}\n")


def test_typed_params_are_converted() -> None:
    rb = runward.Runbook.parse(TYPED)
    plan = rb.plan({"workers": "8", "dry": "yes"})
    assert plan["params"] == {"workers": 8, "dry": True}
    assert plan["steps"][0]["effect"].startswith("run `scale 8 true`")
    native = rb.plan({"workers": 8, "dry": True})
    assert native["params"] == plan["params"]
    assert native["digest"] == plan["digest"], "`--param` strings and native values plan alike"
    assert rb.plan({"dry": False})["params"]["workers"] == 4, "defaults apply"
    assert rb.plan(OrderedDict(dry="no"))["params"]["dry"] is False, "any mapping works"


def test_bad_params_raise_invalid_input() -> None:
    rb = runward.Runbook.parse(TYPED)
    with pytest.raises(runward.InvalidInputError, match="has no parameter `nope`") as info:
        rb.plan({"dry": True, "nope": "x"})
    assert info.value.kind == "invalid_input"
    assert isinstance(info.value, ValueError)
    assert "workers" in str(info.value)
    with pytest.raises(runward.InvalidInputError, match="missing parameter `dry`"):
        rb.plan()
    with pytest.raises(runward.InvalidInputError, match="`workers` must be an integer"):
        rb.plan({"dry": True, "workers": "soon"})
    with pytest.raises(runward.InvalidInputError, match="`dry` must be true or false"):
        rb.plan_text({"dry": "maybe"})
    with pytest.raises(runward.RunwardError):
        rb.plan_text({"nope": 1})


def test_params_must_be_a_mapping_of_names() -> None:
    rb = runward.Runbook.parse(TYPED)
    with pytest.raises(TypeError, match="mapping"):
        rb.plan(["dry=true"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="parameter names must be str"):
        rb.plan({1: "x"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="not JSON-compatible"):
        rb.plan({"dry": object()})


def test_a_malformed_runbook_raises_config_error_with_file_and_line(tmp_path: Path) -> None:
    text = '[runbook]\nname = "x"\n\n[[steps]]\nid = "a"\nkind = "teleport"\n'
    with pytest.raises(runward.ConfigError, match=r"^rb\.toml:6:\d+: .*unknown step kind") as info:
        runward.Runbook.parse(text, path="rb.toml")
    assert info.value.location is not None and info.value.location[:2] == ("rb.toml", 6)
    assert isinstance(info.value, ValueError)
    file = tmp_path / "broken.toml"
    file.write_text("[runbook\nname = 1\n")
    with pytest.raises(runward.ConfigError, match=rf"^{re.escape(str(file))}:1:"):
        runward.Runbook.load(file)
    with pytest.raises(runward.ConfigError, match="has no steps"):
        runward.Runbook.parse('[runbook]\nname = "x"\n')
    with pytest.raises(runward.ConfigError, match=r"\{\{ params\.who \}\}.*not defined"):
        runward.Runbook.parse('[runbook]\nname = "x"\n[[steps]]\nid = "a"\nkind = "command"\nargv = ["echo", "{{ params.who }}"]\n')


def test_a_missing_file_raises_not_found(tmp_path: Path) -> None:
    with pytest.raises(runward.NotFoundError, match="cannot read runbook") as info:
        runward.Runbook.load(tmp_path / "nope.toml")
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_secrets_appear_as_references_only(monkeypatch: pytest.MonkeyPatch) -> None:
    rb = runward.Runbook.parse(SECRET)
    monkeypatch.delenv("RUNWARD_PY_TEST_TOKEN", raising=False)
    assert rb.plan()["params"]["token"] == "[secret $RUNWARD_PY_TEST_TOKEN, not set]"
    monkeypatch.setenv("RUNWARD_PY_TEST_TOKEN", "hunter2")
    plan = rb.plan()
    assert plan["params"]["token"] == "[secret $RUNWARD_PY_TEST_TOKEN]"
    text = rb.plan_text()
    assert "token = [secret $RUNWARD_PY_TEST_TOKEN]" in text
    assert "hunter2" not in repr(plan) and "hunter2" not in text
    monkeypatch.setenv("OTHER_PY_TEST_TOKEN", "hunter3")
    assert rb.plan({"token": "OTHER_PY_TEST_TOKEN"})["params"]["token"] == "[secret $OTHER_PY_TEST_TOKEN]"
    with pytest.raises(runward.InvalidInputError, match="name of an environment variable"):
        rb.plan({"token": 42})


def test_a_secret_with_a_default_is_a_config_error() -> None:
    text = SECRET.replace('env = "RUNWARD_PY_TEST_TOKEN"', 'default = "hunter2"')
    with pytest.raises(runward.ConfigError, match=r"^rotate\.toml:6:\d+: `default`: secret parameter `token`"):
        runward.Runbook.parse(text, path=Path("rotate.toml"))


# Runbook.from_dict: data shaped like a runbook file, with every check of the parser.

NAP = {
    "runbook": {"name": "nap", "description": "sleep, then echo"},
    "params": {"who": {"type": "string", "default": "world"}},
    "steps": [
        {"id": "nap", "kind": "sleep", "duration": "10ms"},
        {"id": "greet", "kind": "command", "argv": ["echo", "hello {{ params.who }}"]},
    ],
}


def test_from_dict_has_the_definition_hash_of_the_parsed_file(seed: runward.Runbook) -> None:
    tomllib = pytest.importorskip("tomllib")
    with SEED.open("rb") as f:
        data = tomllib.load(f)
    rb = runward.Runbook.from_dict(data)
    assert rb.definition_hash == seed.definition_hash
    assert rb.name == seed.name and rb.step_ids == seed.step_ids
    assert rb.path is None
    assert rb.plan(URL) == seed.plan(URL)
    assert rb.plan_text(URL) == seed.plan_text(URL)


def test_from_dict_matches_parse_of_the_same_runbook() -> None:
    parsed = runward.Runbook.parse(TYPED)
    data = {
        "runbook": {"name": "scale"},
        "params": {"workers": {"type": "integer", "default": 4}, "dry": {"type": "boolean"}},
        "steps": [{"id": "scale", "kind": "command", "argv": ("scale", "{{ params.workers }}", "{{ params.dry }}")}],
    }
    assert runward.Runbook.from_dict(data).definition_hash == parsed.definition_hash
    # Any mapping will do at the top level.
    assert runward.Runbook.from_dict(MappingProxyType(data)).definition_hash == parsed.definition_hash


def test_from_dict_refuses_an_unknown_step_kind_naming_it() -> None:
    data = {"runbook": {"name": "x"}, "steps": [{"id": "a", "kind": "sleep", "duration": "1s"},
                                                 {"id": "b", "kind": "teleport"}]}
    with pytest.raises(runward.ConfigError, match="teleport") as info:
        runward.Runbook.from_dict(data)
    assert str(info.value).startswith("`kind` is `teleport`, an unknown step kind"), str(info.value)
    assert info.value.location is None
    assert isinstance(info.value, ValueError) and info.value.kind == "config"


def test_from_dict_refuses_a_none_value_naming_the_key() -> None:
    data = {"runbook": {"name": "x"}, "steps": [{"id": "a", "kind": "sleep", "duration": None}]}
    with pytest.raises(runward.ConfigError, match=re.escape("steps[0].duration")) as info:
        runward.Runbook.from_dict(data)
    assert "null" in str(info.value)
    with pytest.raises(runward.ConfigError, match=r"runbook\.description"):
        runward.Runbook.from_dict({**NAP, "runbook": {"name": "x", "description": None}})


def test_from_dict_applies_the_parser_checks() -> None:
    with pytest.raises(runward.ConfigError, match="has no steps"):
        runward.Runbook.from_dict({"runbook": {"name": "x"}, "steps": []})
    with pytest.raises(runward.ConfigError, match=r"\{\{ params\.nobody \}\}.*not defined"):
        runward.Runbook.from_dict(
            {"runbook": {"name": "x"}, "steps": [{"id": "a", "kind": "command", "argv": ["echo", "{{ params.nobody }}"]}]}
        )
    with pytest.raises(runward.ConfigError):
        runward.Runbook.from_dict({"steps": NAP["steps"]})


def test_from_dict_refuses_what_is_not_a_mapping_of_json_values() -> None:
    with pytest.raises(TypeError, match="must be a mapping"):
        runward.Runbook.from_dict([NAP])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be str"):
        runward.Runbook.from_dict(MappingProxyType({1: "x"}))  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="not JSON-compatible"):
        runward.Runbook.from_dict({**NAP, "runbook": {"name": object()}})


def test_a_runbook_from_a_dict_runs_to_success(tmp_path: Path) -> None:
    calls: list = []

    def record(ctx: dict, params: dict) -> dict:
        calls.append(params)
        return {"summary": f"recorded {params['who']}"}

    data = {**NAP, "steps": [*NAP["steps"], {"id": "record", "kind": "custom", "name": "record",
                                              "params": {"who": "{{ params.who }}"}}]}
    rb = runward.Runbook.from_dict(data)
    engine = runward.Engine.open(tmp_path / "state.db", steps={"record": record})
    outcome = engine.run(rb, {"who": "python"}, started_by="tests")
    assert outcome["run"]["status"] == "succeeded"
    assert calls == [{"who": "python"}]
    shown = runward.Runs.open(tmp_path / "state.db").show(outcome["run"]["id"])
    assert [a["status"] for a in shown["attempts"]] == ["succeeded", "succeeded", "succeeded"]


def test_from_dict_errors_carry_no_position_in_text_the_caller_never_saw() -> None:
    with pytest.raises(runward.ConfigError) as info:
        runward.Runbook.from_dict({"runbook": {"name": "x"}, "steps": [{"id": "a", "kind": "sleep", "duration": 5}]})
    assert str(info.value).startswith("`duration`"), str(info.value)
    assert info.value.location is None
