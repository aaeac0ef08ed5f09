"""Classification speed: our routing classifier against scikit-learn's own predict_proba.

One run, one process, interleaved rounds:
- single text: `Classifier.predict` (the path route_case takes) against
  `pipeline.predict_proba([text])` on the very same fitted pipeline, per text;
- batch: `Classifier.predict_many` on 1000 texts against `pipeline.predict_proba(texts)`.
Goal: at most 1 ms per single text. Prints the ratio ours/baseline, and writes
bench/results/classify.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from routing.classifier import Classifier, train  # noqa: E402
from routing.corpus import load_category_examples, load_urgency_examples  # noqa: E402
from routing.normalise import normalise  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "classify.json"


def per_text_ms(function: Callable[[str], object], texts: list[str]) -> list[float]:
    """Milliseconds each call of `function(text)` took."""
    times = []
    for text in texts:
        started = time.perf_counter()
        function(text)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> int:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--texts", type=int, default=1000)
    args = parser.parse_args()

    examples = load_category_examples()
    print(f"training on {len(examples)} examples ...", flush=True)
    classifier: Classifier = train(examples, urgency_examples=load_urgency_examples())
    pipeline = classifier.category_model
    texts = [example.text for example in examples]
    texts = (texts * (args.texts // len(texts) + 1))[: args.texts]

    single_ours: list[float] = []
    single_base: list[float] = []
    batch_ours: list[float] = []
    batch_base: list[float] = []
    for round_number in range(1, args.rounds + 1):
        single_ours += per_text_ms(classifier.predict, texts)
        single_base += per_text_ms(lambda t: pipeline.predict_proba([normalise(t)]), texts)
        started = time.perf_counter()
        classifier.predict_many(texts)
        batch_ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        pipeline.predict_proba([normalise(t) for t in texts])
        batch_base.append(time.perf_counter() - started)
        print(
            f"  round {round_number}: single {statistics.median(single_ours):.3f} ms, "
            f"batch {batch_ours[-1]:.3f} s for {len(texts)}",
            flush=True,
        )

    def p99(values: list[float]) -> float:
        return statistics.quantiles(values, n=100)[98]

    figures: dict[str, Any] = {
        "texts": len(texts),
        "single_ms": {
            "ours_median": statistics.median(single_ours),
            "ours_p99": p99(single_ours),
            "sklearn_median": statistics.median(single_base),
            "ratio": statistics.median(single_ours) / statistics.median(single_base),
        },
        "batch_seconds": {
            "ours": statistics.median(batch_ours),
            "sklearn": statistics.median(batch_base),
            "ours_texts_per_second": len(texts) / statistics.median(batch_ours),
            "ratio": statistics.median(batch_ours) / statistics.median(batch_base),
        },
    }
    single, batch = figures["single_ms"], figures["batch_seconds"]
    print()
    print(
        f"single text  ours {single['ours_median']:.3f} ms (p99 {single['ours_p99']:.3f})  "
        f"sklearn predict_proba {single['sklearn_median']:.3f} ms  ratio {single['ratio']:.2f}"
    )
    print(
        f"batch of {len(texts)}  ours {batch['ours']:.3f} s ({batch['ours_texts_per_second']:.0f}"
        f" texts/s)  sklearn {batch['sklearn']:.3f} s  ratio {batch['ratio']:.2f}"
    )
    met = single["ours_median"] <= 1.0
    print(f"goal <= 1 ms per single text: {'met' if met else 'GOAL MISSED'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
