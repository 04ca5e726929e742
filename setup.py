"""The packages to install; everything else about the project is in pyproject.toml.

Every package under src/, plus the alembic scripts: they live at the top (`migrations/`, where
alembic's reader looks) and install as `wizesync.migrations`, so `wizesync migrate` runs from a
wheel and the image. pyproject's `packages.find` cannot map a folder outside src/, and a written
list could not serve the production image, which builds from src/wizesync alone (no sandbox).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages("src"), "wizesync.migrations"],
    package_dir={"": "src", "wizesync.migrations": "migrations"},
)
