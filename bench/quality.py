"""Time to quality: train each preset against the wall clock and score its EMA generator with the digit judge.

    python bench/quality.py                                   # every preset, 5 minutes each
    python bench/quality.py --preset cdcgan --minutes 10

Prints, per preset, the seconds until the samples are recognisable (judge confidence >= 0.9 and all ten digits
at >= 5% of the samples), then FID, classifier score and classes covered after each checkpoint of the clock
(0.5, 1, 2, 5 and 10 minutes, as far as the budget goes). The clock counts training only; scoring is paused
out of it. Reference lines show the real-vs-real floor and the noise ceiling of the same metrics.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gan.config import PRESETS, Config  # noqa: E402
from gan.data import load_mnist  # noqa: E402
from gan.latent import sample  # noqa: E402
from gan.metrics import Scores, evaluate_images, load_judge, reference_scores  # noqa: E402
from gan.train import Trainer, configure_threads  # noqa: E402

SAMPLES = 2000
REPORT_AT = (30, 60, 120, 300, 600)  # seconds of training


def recognisable(scores: Scores) -> bool:
    return scores.mean_confidence >= 0.9 and min(scores.histogram) >= 0.05


def score(trainer: Trainer, judge) -> Scores:
    images, labels = sample(trainer.G_ema, SAMPLES, seed=12345)
    return evaluate_images(images, judge, labels)


def line(label: str, scores: Scores) -> str:
    agreement = "" if scores.label_agreement is None else f" {scores.label_agreement:>6.1%}"
    return (
        f"  {label:<22} FID {scores.fid:>8.2f}  score {scores.classifier_score:>5.2f}  classes "
        f"{scores.classes_covered:>2}  confidence {scores.mean_confidence:>5.1%}  min class "
        f"{min(scores.histogram):>5.1%}{agreement}"
    )


def run_preset(config: Config, data, judge, budget: float, probe_every: float) -> None:
    trainer = Trainer(config, data)
    print(
        f"{config.preset} (batch {config.batch_size}, lr {config.lr_g}/{config.lr_d}, {config.loss}, "
        f"{config.precision}, width {config.width}):"
    )
    checkpoints = sorted({*(t for t in REPORT_AT if t <= budget), budget})
    probes = sorted({*checkpoints, *(probe_every * k for k in range(1, int(budget / probe_every) + 1))})
    reached = None
    started, scoring = time.perf_counter(), 0.0
    for target in probes:
        trainer.run(max_seconds=target)
        clock = time.perf_counter() - started - scoring
        scoring_started = time.perf_counter()
        scores = score(trainer, judge)
        scoring += time.perf_counter() - scoring_started
        if reached is None and recognisable(scores):
            reached = clock
            print(line(f"recognisable at {clock:.0f} s", scores) + f"  (epoch {trainer.epoch + 1})")
        if target in checkpoints:
            print(line(f"after {target / 60:g} min ({trainer.epoch} ep)", scores))
    print(
        f"  => recognisable after {f'{reached:.0f} s' if reached else 'not within the budget'}; "
        f"{trainer.images_seen / trainer.seconds:,.0f} images/s\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, nargs="*", default=list(PRESETS))
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--probe-every", type=float, default=10.0, help="seconds between recognisability checks")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. lr_g=1e-3")
    args = parser.parse_args()

    threads = configure_threads()
    data, judge = load_mnist(), load_judge()
    references = reference_scores(judge, n=SAMPLES)
    print(f"{threads} threads; {SAMPLES} samples per score; references:")
    for name, scores in references.items():
        print(line(name, scores))
    print()
    overrides = {key: _parse(value) for key, value in (item.split("=", 1) for item in args.set)}
    for preset in args.preset:
        config = Config.for_preset(preset, **overrides).replace(evaluate=False, epochs=10_000)
        run_preset(config, data, judge, args.minutes * 60, args.probe_every)


def _parse(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


if __name__ == "__main__":
    main()
