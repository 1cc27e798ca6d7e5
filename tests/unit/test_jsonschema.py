"""The JSON Schema editors use is generated from the schema, and agrees with the tool.

The first test is how CI fails on a stale docs/config.schema.json; the others check that
what an editor would flag is what ``deployer.config.load`` refuses, and the reverse.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from deployer import jsonschema as ours
from deployer.scaffold import init

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "docs" / "config.schema.json"


def test_the_committed_json_schema_is_current():
    assert COMMITTED.read_text() == ours.render(), (
        "regenerate: python3 -m deployer schema > docs/config.schema.json"
    )


def test_python_m_deployer_schema_prints_it():
    out = subprocess.run(
        [sys.executable, "-m", "deployer", "schema"], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == ours.document()


def test_it_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(ours.document())


def validator():
    return jsonschema.Draft202012Validator(ours.document())


def test_the_project_and_scaffold_configs_pass(tmp_path):
    init(tmp_path)
    files = [*(REPO / "config").glob("*.yml"), *(tmp_path / "config").glob("*.yml")]
    assert len(files) >= 4
    for path in files:
        errors = list(validator().iter_errors(yaml.safe_load(path.read_text()) or {}))
        assert not errors, f"{path}: {errors[0].message}"


def test_init_writes_the_schema_and_a_modeline_in_every_config_file(tmp_path):
    init(tmp_path)
    assert json.loads((tmp_path / "config" / "deployer.schema.json").read_text()) == ours.document()
    for path in (tmp_path / "config").glob("*.yml"):
        assert path.read_text().splitlines()[0] == ours.MODELINE, path


@pytest.mark.parametrize(
    "bad",
    [
        {"aplication": "typo"},
        {"hosts": [{"host": "a", "port": "22x"}]},
        {"hosts": [{"port": 22}]},
        {"keep_releases": 0},
        {"transport": "ftp"},
        {"rollout": {"batch_size": "120%"}},
        {"templates": [{"src": "a.j2"}]},
        {"hooks": {"after_switch": [{"command": "x", "onec": True}]}},
        {"ssh": {"connect_timeout": 0}},
    ],
)
def test_what_the_tool_refuses_an_editor_flags(bad):
    assert list(validator().iter_errors(bad)), bad
