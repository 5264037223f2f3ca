"""PneumoNet core: data, preprocessing, model, training, evaluation, inference and Grad-CAM.

Decision support for paediatric chest X-rays, not a diagnosis.
"""

__version__ = "0.1.0"

CLASS_NAMES = ("NORMAL", "PNEUMONIA")
INTENDED_USE = (
    "Decision support for pneumonia screening on paediatric (age 1-5) chest X-rays. "
    "Not a diagnosis: a clinician must review every image and result."
)
