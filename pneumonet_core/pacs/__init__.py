"""The PACS worklist over standard DICOMweb: find new chest radiographs, score them once per
model version through the one `Predictor` path, write the results back as DICOM (a Secondary
Capture and a Comprehensive SR), and list them, the most urgent first.

Order inside: `settings` <- `client` <- `state`, `results` <- `worker` <- `worklist`.
"""

from pneumonet_core.pacs import client, results, settings, state, worker, worklist
from pneumonet_core.pacs.client import InstanceRef, PacsUnavailable
from pneumonet_core.pacs.settings import PacsSettings, pacs_settings
from pneumonet_core.pacs.worker import PacsWorker, PassSummary
from pneumonet_core.pacs.worklist import Worklist, WorklistRow, build_worklist

__all__ = [
    "InstanceRef",
    "PacsSettings",
    "PacsUnavailable",
    "PacsWorker",
    "PassSummary",
    "Worklist",
    "WorklistRow",
    "build_worklist",
    "client",
    "pacs_settings",
    "results",
    "settings",
    "state",
    "worker",
    "worklist",
]
