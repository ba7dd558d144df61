"""The errors a user can cause, in one place: bad settings, a damaged or busy run, unreadable files or pictures,
missing data or judges, a device that is not there, a run that diverged. The command line and the app's job show
these as one line; any other error is a bug and is named (the command line shows its traceback)."""

from gan.config import ConfigError
from gan.data import DataError
from gan.device import DeviceUnavailable
from gan.jobs.runner import RunError
from gan.lab.probe import ImageError
from gan.scoring.judge import JudgeError
from gan.store.checkpoints import CheckpointError
from gan.store.files import FileError
from gan.train import TrainingDiverged

USER_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    CheckpointError,
    FileError,
    DataError,
    ImageError,
    RunError,
    JudgeError,
    DeviceUnavailable,
    TrainingDiverged,
)
