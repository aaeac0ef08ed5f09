"""The labelled training corpus: loading, hashing, and a validation report (counts, duplicates).

Run `python -m routing.corpus` to print counts per label and locale, near-duplicates (reworded
copies, which flatter cross-validation) and exact duplicates; it exits non-zero when a category
falls below the minimum per locale or a text is repeated.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cases.locales import LOCALES
from routing.lexicon import DEFAULT_LEXICON_PATH, load_lexicon
from routing.normalise import normalise

CORPUS_DIR = Path(__file__).resolve().parent.parent / "config" / "corpus"
CATEGORY_DIR = CORPUS_DIR / "categories"
URGENCY_PATH = CORPUS_DIR / "urgency.jsonl"

CATEGORIES: tuple[str, ...] = (
    "streetlight",
    "road_facility",
    "water_supply",
    "power_supply",
    "sanitation",
    "illegal_construction",
    "noise_pollution",
    "public_order",
    "household_registration",
    "social_assistance",
    "wage_arrears",
    "social_insurance",
    "consumer_rights",
    "transport",
    "education",
    "healthcare",
    "consultation",
    "other",
)
URGENCIES: tuple[str, ...] = ("emergency", "urgent", "normal")
# The least the corpus must hold per category (and per urgency class, for zh-CN).
MINIMUM_PER_LOCALE: dict[str, int] = {"zh-CN": 60, "en-US": 20, "ko-KR": 10}
# Near-duplicates: character trigrams, and the Jaccard overlap at which two texts count as one.
NEAR_SHINGLE = 3
NEAR_THRESHOLD = 0.6


@dataclass(frozen=True)
class Example:
    """One labelled text: a category or an urgency, with its locale."""

    text: str
    label: str
    locale: str


def _read_jsonl(path: Path, *, label_key: str) -> list[Example]:
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            examples.append(Example(text=row["text"], label=row[label_key], locale=row["locale"]))
        except (ValueError, KeyError) as error:
            raise ValueError(f"{path}:{number}: not a {label_key} example: {error}") from error
    return examples


def load_examples(path: Path, *, label_key: str = "category") -> list[Example]:
    """Examples from one JSONL file or every *.jsonl file in a folder (sorted by name)."""
    paths = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    return [example for each in paths for example in _read_jsonl(each, label_key=label_key)]


def load_category_examples(path: Path = CATEGORY_DIR) -> list[Example]:
    """The shipped category corpus ({"text", "category", "locale"} per line)."""
    return load_examples(path, label_key="category")


def load_urgency_examples(path: Path = URGENCY_PATH) -> list[Example]:
    """The shipped urgency corpus ({"text", "urgency", "locale"} per line)."""
    return load_examples(path, label_key="urgency")


def corpus_hash(examples: Iterable[Example]) -> str:
    """A SHA-256 over the examples in order, to tie a trained model to its corpus."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(f"{example.label}\t{example.locale}\t{example.text}\n".encode())
    return digest.hexdigest()


def training_data_digest(
    *,
    categories: Path = CATEGORY_DIR,
    urgency: Path = URGENCY_PATH,
    lexicon: Path = DEFAULT_LEXICON_PATH,
) -> str:
    """A SHA-256 over all a model is trained from: the category and urgency examples and the
    lexicon's topics (as loaded, so reworded comments change nothing).

    With `routing.classifier.FORMAT_VERSION` and the scikit-learn version it identifies a trained
    artefact; the test suite keys its cached classifier by it."""
    digest = hashlib.sha256()
    examples = [*load_category_examples(categories), *load_urgency_examples(urgency)]
    digest.update(corpus_hash(examples).encode())
    digest.update(json.dumps(load_lexicon(lexicon), ensure_ascii=False).encode())
    return digest.hexdigest()


def count_examples(examples: Iterable[Example]) -> dict[str, Counter[str]]:
    """Counts per label, then per locale."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for example in examples:
        counts[example.label][example.locale] += 1
    return dict(counts)


def find_duplicates(examples: Sequence[Example]) -> list[tuple[Example, Example]]:
    """Pairs of examples whose normalised texts are equal (the first seen, the repeat)."""
    seen: dict[str, Example] = {}
    pairs = []
    for example in examples:
        key = normalise(example.text)
        if key in seen:
            pairs.append((seen[key], example))
        else:
            seen[key] = example
    return pairs


def _shingles(text: str, size: int = NEAR_SHINGLE) -> set[str]:
    # Spaces carry no meaning in Mandarin and little in the others' n-gram overlap.
    compact = "".join(normalise(text).split())
    return {compact[i : i + size] for i in range(max(1, len(compact) - size + 1))}


def find_near_duplicates(
    examples: Sequence[Example], *, threshold: float = NEAR_THRESHOLD
) -> list[tuple[Example, Example, float]]:
    """Pairs of examples of one locale whose character-trigram sets overlap (Jaccard) at least
    `threshold`: one report reworded, or a template filled twice, which inflates CV scores."""
    shingled = [_shingles(example.text) for example in examples]
    index: dict[str, list[int]] = defaultdict(list)
    for number, shingles in enumerate(shingled):
        for shingle in shingles:
            index[shingle].append(number)
    pairs = []
    for number, shingles in enumerate(shingled):
        shared: Counter[int] = Counter()
        for shingle in shingles:
            shared.update(other for other in index[shingle] if other > number)
        for other, overlap in shared.items():
            if examples[other].locale != examples[number].locale:
                continue
            jaccard = overlap / (len(shingles) + len(shingled[other]) - overlap)
            if jaccard >= threshold:
                pairs.append((examples[number], examples[other], jaccard))
    return pairs


def shortfalls(
    examples: Iterable[Example], *, labels: Sequence[str], locales: Sequence[str] = LOCALES
) -> list[str]:
    """Which label and locale pairs hold fewer examples than the minimum."""
    counts = count_examples(examples)
    problems = []
    for label in labels:
        for locale in locales:
            have = counts.get(label, Counter())[locale]
            if have < MINIMUM_PER_LOCALE[locale]:
                problems.append(f"{label} {locale}: {have} < {MINIMUM_PER_LOCALE[locale]}")
    return problems


def _table(examples: Sequence[Example], labels: Sequence[str]) -> str:
    counts = count_examples(examples)
    lines = [f"{'label':24}" + "".join(f"{locale:>8}" for locale in LOCALES) + f"{'total':>8}"]
    for label in labels:
        row = counts.get(label, Counter())
        cells = "".join(f"{row[locale]:>8}" for locale in LOCALES)
        lines.append(f"{label:24}{cells}{sum(row.values()):>8}")
    totals = "".join(f"{sum(c[loc] for c in counts.values()):>8}" for loc in LOCALES)
    lines.append(f"{'total':24}{totals}{len(examples):>8}")
    return "\n".join(lines)


def main() -> int:
    """Print the corpus report and near-duplicates; non-zero exit on shortfalls, duplicates
    or unknown labels."""
    categories = load_category_examples()
    urgencies = load_urgency_examples()
    problems = shortfalls(categories, labels=CATEGORIES)
    problems += shortfalls(urgencies, labels=URGENCIES, locales=("zh-CN",))
    problems += [f"unknown category {e.label!r}" for e in categories if e.label not in CATEGORIES]
    problems += [f"unknown urgency {e.label!r}" for e in urgencies if e.label not in URGENCIES]
    problems += [
        f"unknown locale {e.locale!r}" for e in [*categories, *urgencies] if e.locale not in LOCALES
    ]
    for first, again in find_duplicates(categories) + find_duplicates(urgencies):
        problems.append(f"duplicate: {again.text!r} ({first.label} / {again.label})")
    for first, again, overlap in find_near_duplicates(categories):
        print(f"near-duplicate ({overlap:.2f}): {first.text!r} / {again.text!r}")
    print(_table(categories, CATEGORIES))
    print()
    print(_table(urgencies, URGENCIES))
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
