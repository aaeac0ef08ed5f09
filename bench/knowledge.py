"""Retrieval speed: `Retriever.ask` per question, against the routing classifier's `predict`
on the same texts in the same process (interleaved rounds, so both see the same machine load).

Texts: the held-out questions (config/knowledge/heldout.jsonl). Goal: at most 20 ms a question.
Prints p50/p95 wall and CPU milliseconds for both and the ratio ours/baseline.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge.articles import load_articles  # noqa: E402
from knowledge.evaluate import load_heldout  # noqa: E402
from knowledge.retrieval import Retriever  # noqa: E402
from routing.classifier import train  # noqa: E402
from routing.corpus import load_category_examples  # noqa: E402

ROUNDS = 5
GOAL_MS = 20.0


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _time(call: Callable[[str], object], texts: list[str]) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for text in texts:
        started, started_cpu = time.perf_counter(), time.process_time()
        call(text)
        cpu.append((time.process_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return wall, cpu


def main() -> int:
    """Run the benchmark and print the figures."""
    texts = [question.text for question in load_heldout()]
    print("building the retriever and training the baseline classifier ...", flush=True)
    retriever = Retriever.build(load_articles())
    classifier = train(load_category_examples())
    ours_wall: list[float] = []
    ours_cpu: list[float] = []
    base_wall: list[float] = []
    base_cpu: list[float] = []
    for _ in range(ROUNDS):
        wall, cpu = _time(retriever.ask, texts)
        ours_wall += wall
        ours_cpu += cpu
        wall, cpu = _time(classifier.predict, texts)
        base_wall += wall
        base_cpu += cpu
    for name, wall, cpu in (
        ("Retriever.ask", ours_wall, ours_cpu),
        ("Classifier.predict", base_wall, base_cpu),
    ):
        print(
            f"{name:<20} wall p50 {_percentile(wall, 0.5):6.2f} ms  p95 "
            f"{_percentile(wall, 0.95):6.2f} ms   cpu p50 {_percentile(cpu, 0.5):6.2f} ms  "
            f"p95 {_percentile(cpu, 0.95):6.2f} ms"
        )
    ratio = statistics.median(ours_cpu) / max(statistics.median(base_cpu), 1e-9)
    print(f"ratio ours/baseline (median CPU): {ratio:.1f}x")
    p95 = _percentile(ours_wall, 0.95)
    print(f"goal: p95 <= {GOAL_MS:.0f} ms a question: {'met' if p95 <= GOAL_MS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
