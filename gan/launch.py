"""`gan-studio`: start the app of an installed copy, as `streamlit run app.py` does in a clone.

Streamlit reads the `.streamlit/config.toml` that sits beside the script it runs, so the app's server settings hold
from any working directory; runs go to ./checkpoints of that directory (or $GAN_STUDIO_CHECKPOINTS), as with
`streamlit run app.py`. Arguments are passed on to `streamlit run`: `gan-studio --server.port 8502`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def app_path() -> Path:
    """app.py of `pip install .` (the gan_studio package beside gan/), else of a clone or an editable install."""
    for candidate in (PACKAGE_DIR.parent / "gan_studio" / "app.py", PACKAGE_DIR.parent / "app.py"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"app.py is neither in {PACKAGE_DIR.parent / 'gan_studio'} nor in {PACKAGE_DIR.parent}")


def main(argv: Sequence[str] | None = None) -> None:
    from streamlit.web import cli  # here, not at the top: importing streamlit takes seconds and only this needs it

    arguments = list(sys.argv[1:] if argv is None else argv)
    cli.main(["run", str(app_path()), *arguments], prog_name="gan-studio")


if __name__ == "__main__":
    main()
