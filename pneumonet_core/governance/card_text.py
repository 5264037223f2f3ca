"""The standard limitations every model card lists (read by `modelcard` and its Markdown)."""

LIMITATIONS = [
    "Trained on one centre's paediatric (age 1-5) anterior-posterior chest X-rays "
    "(Guangzhou, Kermany et al. 2018); other populations, adults, lateral views and other "
    "hospitals' equipment are outside its validated use.",
    "Figures on images from outside the training set come from test/, half of the official "
    "test split, which also chose the recipe, the calibration and the operating point: they are "
    "development figures, optimistic for new images. Validation figures from train/ overstate "
    "accuracy on new images even more.",
    "Distinguishes NORMAL from PNEUMONIA only (bacterial and viral are both PNEUMONIA); it does "
    "not detect other findings.",
    "Grad-CAM heatmaps show what influenced the score, not where the disease is.",
]
