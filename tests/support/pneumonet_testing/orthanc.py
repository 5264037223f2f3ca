"""A real Orthanc PACS with its DICOMweb plugin, on free localhost ports, for tests and benchmarks.

Debian's `orthanc` and `orthanc-dicomweb` packages provide the server and the plugin; nothing
here uses Orthanc's own REST API beyond its health answer at `/system`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pneumonet_testing.concurrent_sessions import free_port

ORTHANC = "Orthanc"
PLUGIN_CANDIDATES = (
    Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so"),
    Path("/usr/lib/orthanc/libOrthancDicomWeb.so"),
)
START_TIMEOUT_S = 60


@dataclass
class OrthancServer:
    """A running Orthanc: its DICOMweb root, folder and process (restartable on the same port)."""

    folder: Path
    http_port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def start(self) -> OrthancServer:
        log = open(self.folder / "orthanc.log", "ab")  # noqa: SIM115 (kept open for the process)
        self.process = subprocess.Popen(
            [shutil.which(ORTHANC) or ORTHANC, str(self.folder / "config.json")],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.folder,
        )
        wait_until_up(self.url, self.process)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def plugin_path() -> Path:
    for candidate in PLUGIN_CANDIDATES:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        "the Orthanc DICOMweb plugin is missing (apt-get install orthanc-dicomweb)"
    )


def orthanc_available() -> bool:
    return shutil.which(ORTHANC) is not None and any(p.exists() for p in PLUGIN_CANDIDATES)


def write_config(folder: Path) -> int:
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "PneumoNetTest",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpBindAddress": "127.0.0.1",
        "DicomServerEnabled": False,
        "Plugins": [str(plugin_path())],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return http_port


def start_orthanc(folder: Path) -> OrthancServer:
    """Orthanc on free localhost ports with its store in `folder`, once it answers."""
    folder.mkdir(parents=True, exist_ok=True)
    return OrthancServer(folder=folder, http_port=write_config(folder)).start()


def wait_until_up(url: str, process: subprocess.Popen, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Orthanc exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/system", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"Orthanc did not answer within {timeout_s} s")
