"""`step`: one training step of a saved run in slow motion. The run is resumed under its lock, the step is taken
by the training loop itself (as the app's slow motion takes it), each numbered sub-step is printed with its values,
and the run is saved as a stop saves it: its latest state and its history."""

from __future__ import annotations

import argparse

from gan.control import Control
from gan.device import configure_threads
from gan.jobs.runner import RunError, check_startable, prepare_trainer, train_run
from gan.lab.slowmotion import SubStepView, slow_step
from gan.store.history import StepRecord
from gan.store.run import Run


def register(commands: argparse._SubParsersAction) -> None:
    stepper = commands.add_parser("step", help="take one training step of a saved run, printing its ten sub-steps")
    stepper.set_defaults(command=step_command)
    stepper.add_argument("--run", required=True)


def check_unfinished(run: Run) -> None:
    """Refuse a finished run before anything is touched: its last epoch is saved and stepping it would go past it."""
    planned, saved = run.config().epochs, run.epochs()
    if saved and saved[-1] >= planned:
        raise RunError(
            f"run {run.name!r} is finished ({planned} epochs): there is no next step; train it further with "
            f"'python -m gan train --run {run.name} --resume --epochs N'"
        )


def print_view(view: SubStepView) -> None:
    print(f"{view.index:>3} {view.label:<9} {view.title}: {view.summary}")


def step_command(args: argparse.Namespace) -> int:
    configure_threads()
    run = Run.at(args.run, args.root)
    check_startable(run, resume=True)
    with run.lock():  # refused while the app or another command trains this run
        check_unfinished(run)
        trainer = prepare_trainer(run, resume=True)
        control = Control()
        control.pause()
        control.substep()  # one step in slow motion, then stop: the loop saves as for any stop

        def stop_after_it(record: StepRecord) -> None:
            control.stop()

        config = trainer.config
        print(
            f"run {run.name}: step {trainer.step + 1} in slow motion (epoch {trainer.epoch + 1}, batch "
            f"{trainer.batch + 1} of {trainer.steps_per_epoch}; loss {config.loss}, {config.discriminator_steps} D "
            f"{'step' if config.discriminator_steps == 1 else 'steps'} per G step)"
        )
        train_run(
            run,
            trainer,
            control,
            on_step=stop_after_it,
            slow_step=lambda real, labels: slow_step(trainer, real, labels, print_view),
        )
    print(f"saved run {run.name} at step {trainer.step} (its latest state and history)")
    return 0
