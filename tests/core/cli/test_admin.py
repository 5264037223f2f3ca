"""admin_cli: `pneumonet audit export` and `pneumonet model list/promote/rollback/threshold`, as
users call them, on a real MLflow registry and a real audit database in PNEUMONET_HOME."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest

from pneumonet_core.cli.main import EXIT_ERROR, main
from pneumonet_core.governance import audit, registry
from pneumonet_core.models.modelio import write_model_entries


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run(capsys, *arguments: str) -> tuple[int, str, str]:
    """`pneumonet ARGUMENTS` in this process: (exit status, stdout, stderr)."""
    code = main(list(arguments))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def exported(capsys, *options: str) -> list[dict]:
    code, out, _ = run(capsys, "audit", "export", *options)
    assert code == 0
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def scans(image_factory, corrupt_jpeg) -> Path:
    """A folder of three readable images with identifying names, and one unreadable file."""
    for index, name in enumerate(("smith_john_1.png", "smith_john_2.png", "doe_jane.jpeg")):
        image_factory(f"scans/{name}", label_index=index % 2, seed=index)
    folder = corrupt_jpeg.parent.parent / "scans"
    shutil.copy(corrupt_jpeg, folder / "broken_patient.jpeg")
    return folder


def test_predict_records_each_prediction_and_audit_export_prints_them(
    untrained_model_path, scans, capsys
):
    assert exported(capsys) == []  # no trail yet: nothing, and no error
    code, out, err = run(capsys, "predict", str(scans), "--model", str(untrained_model_path))
    assert code == 1  # the unreadable file
    assert "model named file, threshold 0.500" in err
    assert "audit write failed" not in err

    entries = exported(capsys)
    images = sorted(path for path in scans.iterdir() if path.name != "broken_patient.jpeg")
    assert len(entries) == 3  # the unreadable file gave no prediction to record
    assert {entry["image_sha256"] for entry in entries} == {sha256(path) for path in images}
    for entry in entries:
        assert entry["action"] == "predict" and entry["source"] == "cli:predict"
        assert entry["user"] == audit.current_user()
        assert entry["model_sha256"] == sha256(untrained_model_path)
        assert entry["model_version"] == "named file"
        assert entry["label"] in ("NORMAL", "PNEUMONIA") and entry["threshold"] == 0.5
        assert 0 <= entry["probability"] <= 1 and isinstance(entry["ood"], bool)
    code, text, _ = run(capsys, "audit", "export", "--format", "csv")
    everything = json.dumps(entries) + text
    for identifying in ("smith", "john", "doe", "jane", "broken", "scans", ".png", ".jpeg"):
        assert identifying not in everything  # names and paths never reach the trail
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["image_sha256"] for row in rows] == [entry["image_sha256"] for entry in entries]
    assert exported(capsys, "--since", "2999-01-01") == []
    assert len(exported(capsys, "--since", entries[0]["time"][:10])) == 3


def test_predict_writes_one_audit_transaction_per_batch(
    untrained_model_path, scans, capsys, monkeypatch
):
    writes = []
    original_insert = audit._insert
    monkeypatch.setattr(
        audit, "_insert", lambda rows: writes.append(len(rows)) or original_insert(rows)
    )
    model = ("--model", str(untrained_model_path))
    code, out, _ = run(capsys, "predict", str(scans), *model, "--batch-size", "2", "--json")
    assert code == 1
    assert len(out.splitlines()) == 4
    # sorted: broken_patient (unreadable), doe_jane | smith_john_1, smith_john_2
    assert writes == [1, 2]
    assert len(exported(capsys)) == 3 and audit.verify_chain().intact


def test_audit_export_refuses_a_bad_date_or_format(capsys):
    code, _, err = run(capsys, "audit", "export", "--since", "last tuesday")
    assert code == EXIT_ERROR
    assert err.startswith("pneumonet: error: not an ISO 8601 date") and "last tuesday" in err
    with pytest.raises(SystemExit):
        main(["audit", "export", "--format", "xml"])


def test_a_failed_audit_write_is_one_line_and_the_prediction_stands(
    untrained_model_path, image_factory, isolated_state, capsys
):
    (isolated_state / audit.AUDIT_FILE_NAME).mkdir()  # no database can be opened there
    image = image_factory("a.png")
    code, out, err = run(capsys, "predict", str(image), "--model", str(untrained_model_path))
    assert code == 0
    assert out.splitlines()[-1].startswith(f"{image}\t")  # the prediction is shown
    notices = [line for line in err.splitlines() if "audit write failed" in line]
    assert len(notices) == 1 and "1 of 1 predictions" in notices[0]


def test_model_commands_promote_list_threshold_and_rollback(
    untrained_model_path, dataset_factory, image_factory, tmp_path, capsys, monkeypatch
):
    # No labelled data: the promotion gate cannot check, so each promotion needs a reason.
    monkeypatch.setenv("PNEUMONET_DATA", str(tmp_path / "no-data"))
    override = ("--override-reason", "registry plumbing test")
    first = untrained_model_path
    second = tmp_path / "second.keras"
    shutil.copy(untrained_model_path, second)
    write_model_entries(second, {"marker.bin": b"second"})  # another file, another version
    user = audit.current_user()

    code, out, _ = run(capsys, "model", "list")
    assert code == 0 and "No model has been promoted to the registry yet." in out
    assert "Model in use: shipped" in out
    assert json.loads(run(capsys, "model", "list", "--json")[1]) == []

    code, out, _ = run(capsys, "model", "promote", str(first), *override)
    assert code == 0 and "Promoted: registry version 1 is now active." in out
    assert "Promotion gate: cannot check" in out
    assert run(capsys, "model", "promote", str(second), *override)[0] == 0
    rows = json.loads(run(capsys, "model", "list", "--json")[1])
    assert [(row["version"], row["active"]) for row in rows] == [(2, True), (1, False)]
    code, out, _ = run(capsys, "model", "list")
    assert "2 *" in out and "Model in use: registry version 2" in out

    folder = dataset_factory(per_class=3, splits=("val",)) / "val"
    code, out, _ = run(capsys, "model", "threshold", "2", "0.4", "--evidence", str(folder))
    assert code == 0, out
    assert f"threshold 0.4, chosen on 6 local images by {user}" in out
    point = registry.operating_point(2)
    assert (point.threshold, point.evidence.n_images) == (0.4, 6)

    image = image_factory("a.png")
    code, out, err = run(capsys, "predict", str(image), "--json")  # the active model
    assert code == 0
    assert json.loads(out)["threshold"] == 0.4
    assert "model registry version 2, threshold 0.400 (site operating point: threshold 0.4" in err

    code, out, _ = run(capsys, "model", "rollback", "1")
    assert code == 0 and "Rolled back: registry version 1 is now active." in out
    assert registry.resolve_model().version == 1
    code, out, err = run(capsys, "predict", str(image), "--json")
    assert json.loads(out)["threshold"] == 0.5  # version 1 has no site operating point

    code, _, err = run(capsys, "model", "rollback", "9")
    assert code == EXIT_ERROR and "no registry version 9" in err
    code, _, err = run(capsys, "model", "threshold", "1", "1.5", "--evidence", str(folder))
    assert code == EXIT_ERROR and "strictly between 0 and 1" in err
    code, _, err = run(capsys, "model", "promote", str(tmp_path / "absent.keras"), *override)
    assert code == EXIT_ERROR and "absent.keras" in err
    assert registry.resolve_model().version == 1

    entries = exported(capsys)
    assert [entry["action"] for entry in entries] == [
        "promote",
        "promote",
        "set_threshold",
        "predict",
        "rollback",
        "predict",
    ]
    assert {entry["user"] for entry in entries} == {user}
    promoted, _, threshold_set, predicted, rolled_back, _ = entries
    assert (promoted["model_version"], promoted["model_sha256"]) == (
        "registry version 1",
        sha256(first),
    )
    assert threshold_set["threshold"] == 0.4 and threshold_set["details"]["n_images"] == 6
    assert threshold_set["source"] == "cli:model threshold"
    assert (predicted["model_version"], predicted["threshold"]) == ("registry version 2", 0.4)
    assert predicted["model_sha256"] == sha256(second)
    assert rolled_back["model_version"] == "registry version 1"
