"""config: every location comes from an environment variable or a documented default."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pneumonet_core.utils import config


def test_project_root_holds_the_package():
    assert (config.project_root() / "pneumonet_core" / "utils" / "config.py").is_file()


def test_data_root_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("PNEUMONET_DATA", raising=False)
    assert config.data_root() == config.project_root().parent / "shared" / "data" / "chest_xray"
    monkeypatch.setenv("PNEUMONET_DATA", str(tmp_path / "xrays"))
    assert config.data_root() == tmp_path / "xrays"


def test_state_dir_and_derived_paths_follow_pneumonet_home(monkeypatch, tmp_path):
    monkeypatch.setenv("PNEUMONET_HOME", str(tmp_path))
    assert config.state_dir() == tmp_path
    assert config.tracking_uri() == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert config.artifact_root() == tmp_path / "artifacts"
    assert config.jobs_dir() == tmp_path / "jobs"
    assert config.promoted_model_path() == tmp_path / "active" / "model.keras"
    monkeypatch.delenv("PNEUMONET_HOME")
    assert config.state_dir() == config.project_root() / "runs"


def test_tracking_uri_override(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert config.tracking_uri() == "http://tracking.example:5000"


def test_active_model_prefers_env_then_registry_then_shipped(monkeypatch, tmp_path):
    from pneumonet_core.governance import (
        registry,  # resolves the active model (a registry version: there)
    )

    monkeypatch.setenv("PNEUMONET_HOME", str(tmp_path))
    monkeypatch.delenv("PNEUMONET_MODEL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert registry.active_model_path() == config.shipped_model_path()
    assert config.shipped_model_path() == (
        config.project_root() / "assets" / "model" / "pneumonet.keras"
    )
    promoted = config.promoted_model_path()  # where promotion copied models before the registry
    promoted.parent.mkdir(parents=True)
    promoted.write_bytes(b"model")
    assert registry.active_model_path() == config.shipped_model_path()  # promoting registers
    monkeypatch.setenv("PNEUMONET_MODEL", "~/chosen.keras")
    assert registry.active_model_path() == Path("~/chosen.keras").expanduser()


def test_stderr_silenced_hides_descriptor_2_only_while_inside(capfd):
    os.write(2, b"before\n")
    with config.stderr_silenced():
        os.write(2, b"written by C code while TensorFlow is imported\n")
    os.write(2, b"after\n")
    print("and from Python", file=sys.stderr)
    assert capfd.readouterr().err == "before\nafter\nand from Python\n"


def test_quiet_tensorflow_keeps_a_level_the_user_set(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    config.quiet_tensorflow(verbose=True)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    config.quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"
