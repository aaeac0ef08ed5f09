"""The text classifiers: category and urgency, TF-IDF features and a calibrated linear SVM.

Features: TF-IDF over character 1–3-grams (`char_wb`; Chinese has no spaces, and ASR slips such
as 路等 for 路灯 still share characters), joined with TF-IDF over word unigrams of Latin and Hangul
words (English and Korean are spaced) and over the trilingual topics of `routing.lexicon`. The
topic block is down-weighted (`TOPIC_WEIGHT`): it carries what Mandarin teaches to English and
Korean, but at full weight its broad cues (a school, a bus, a neighbour) outvote the characters
that say what is actually wrong.
Model: a one-vs-rest linear SVM (`CalibratedLinearSVC`). It separates the confusable classes
better than logistic regression on this corpus (cross-validated accuracy about 1.5 points higher),
but its margins are not probabilities; they are turned into ones by temperature scaling: one
factor T, fitted on out-of-fold margins by minimising log-loss, so that softmax(T * margin) is
calibrated. T is folded into the weights, so the fitted model is still one linear layer and a
softmax. The cross-validated confidences (`routing.evaluate`) are how the triage threshold is
chosen. The urgency model is the multinomial logistic regression it always was (unweighted
union, `URGENCY_C`): `routing.decide` compares its probabilities with a threshold set for them.

A trained `Classifier` is saved as one file: a magic line, a JSON header line (trained-at, corpus
hash, scikit-learn version, labels), then the joblib payload. `Classifier.load` reads the header
before unpickling and refuses a model trained under another scikit-learn version.
Only load artefacts you made: the payload is a pickle.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import sklearn
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from routing import lexicon
from routing.corpus import Example, corpus_hash
from routing.normalise import normalise

MAGIC = b"DO-IT-NOW-ROUTING-MODEL\n"
# Bump when a code change makes artefacts saved before it wrong (the features, the pipeline, the
# file layout): `Classifier.load` then refuses them, and the test suite's cached model, keyed by
# the training data and this number, is retrained. A change of data needs no bump.
FORMAT_VERSION = 1
# Words of Latin letters or Hangul syllables; Han text is covered by the character n-grams.
WORD_PATTERN = r"[a-z][a-z']+|[\uac00-\ud7a3]+"
DEFAULT_C = 1.0
# The urgency model stays the multinomial logistic regression it was: its probabilities feed
# `routing.decide.URGENT_MODEL_THRESHOLD`, which was chosen for them.
URGENCY_C = 20.0
ModelKind = Literal["svm", "logistic"]
# The weight of the lexicon-topic block against the character and word blocks (each weighs 1).
TOPIC_WEIGHT = 0.3
# Folds for the out-of-fold margins the temperature is fitted on.
CALIBRATION_FOLDS = 5
TOP_K = 3


class ModelVersionError(RuntimeError):
    """The saved model was trained under a different scikit-learn (or format) version."""


class ModelFormatError(RuntimeError):
    """The file is not a routing model."""


@dataclass(frozen=True)
class Prediction:
    """A category with its probability, and the top categories with theirs."""

    category: str
    confidence: float
    top: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class UrgencyPrediction:
    """An urgency class (emergency, urgent, normal) with its probability and all three."""

    urgency: str
    confidence: float
    top: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class ModelHeader:
    """What a saved model says about itself before it is unpickled."""

    format_version: int
    trained_at: str
    corpus_sha256: str
    sklearn_version: str
    categories: tuple[str, ...]
    urgencies: tuple[str, ...]
    examples: int
    urgency_examples: int


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    result: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
    return result


def _as_two_columns(scores: np.ndarray) -> np.ndarray:
    """Margins as one column per class; a binary model's single margin s becomes (0, s)."""
    return np.column_stack([np.zeros_like(scores), scores]) if scores.ndim == 1 else scores


def fit_temperature(scores: np.ndarray, truth: np.ndarray) -> float:
    """The factor T that minimises the log-loss of softmax(T * scores) on labelled margins
    (`truth` holds column indices)."""
    rows = np.arange(len(truth))

    def loss(log_t: float) -> float:
        return float(-log_softmax(math.exp(log_t) * scores, axis=1)[rows, truth].mean())

    found = minimize_scalar(loss, bounds=(-4.0, 6.0), method="bounded")
    return math.exp(float(found.x))


class CalibratedLinearSVC(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A one-vs-rest linear SVM whose margins are made probabilities by temperature scaling.

    `fit` trains the SVM on all the data, and again on `folds` stratified folds to get margins
    for texts each fold did not see; the temperature T fitted on those margins multiplies the
    weights. `coef_` and `intercept_` are the scaled weights, so `predict_proba` is
    softmax(x @ coef_.T + intercept_), as for a multinomial logistic regression (with two
    classes, the sigmoid of the one margin). With too few examples per class for the folds,
    T stays 1.
    """

    def __init__(self, c: float = DEFAULT_C, folds: int = CALIBRATION_FOLDS) -> None:
        self.c = c
        self.folds = folds

    def _svm(self) -> LinearSVC:
        return LinearSVC(C=self.c, max_iter=20000, random_state=0)

    def fit(self, x: Any, y: Any) -> CalibratedLinearSVC:
        """Fit the SVM and the temperature."""
        truth = np.asarray(y)
        svm = self._svm().fit(x, truth)
        self.classes_ = svm.classes_
        indices = np.searchsorted(self.classes_, truth)
        folds = min(self.folds, int(np.bincount(indices).min()))
        self.temperature_ = 1.0
        if folds >= 2:
            margins = np.zeros((len(truth), len(self.classes_)))
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
            for train, test in splitter.split(np.zeros(len(truth)), truth):
                fold = self._svm().fit(x[train], truth[train])
                margins[test] = _as_two_columns(fold.decision_function(x[test]))
            self.temperature_ = fit_temperature(margins, indices)
        self.coef_ = svm.coef_ * self.temperature_
        self.intercept_ = svm.intercept_ * self.temperature_
        return self

    def decision_function(self, x: Any) -> np.ndarray:
        """The scaled margins (one column per class, or one margin for two classes)."""
        scores: np.ndarray = np.asarray(x @ self.coef_.T) + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict_proba(self, x: Any) -> np.ndarray:
        """Calibrated probabilities: the softmax of the scaled margins."""
        return _softmax(_as_two_columns(self.decision_function(x)))

    def predict(self, x: Any) -> np.ndarray:
        """The most probable class of each row."""
        result: np.ndarray = self.classes_[self.predict_proba(x).argmax(axis=1)]
        return result


def build_pipeline(
    *, c: float = DEFAULT_C, words: bool = True, topics: bool = True, model: ModelKind = "svm"
) -> Pipeline:
    """An unfitted pipeline: the feature union and the calibrated linear SVM (the category
    model), or with `model="logistic"` a multinomial logistic regression over the unweighted
    union (the urgency model).

    `words` and `topics` drop those blocks for a corpus that has no Latin or Hangul words or
    no lexicon topics (a vectorizer with an empty vocabulary cannot be fitted).
    """
    blocks: list[tuple[str, TfidfVectorizer]] = [
        (
            "chars",
            TfidfVectorizer(
                analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, lowercase=False
            ),
        )
    ]
    if words:
        blocks.append(
            (
                "words",
                TfidfVectorizer(
                    analyzer="word", token_pattern=WORD_PATTERN, sublinear_tf=True, lowercase=False
                ),
            )
        )
    weights = {name: 1.0 for name, _ in blocks}
    if topics:
        # Topics shared by the three languages (routing.lexicon): what the model learns from
        # the large Mandarin corpus carries over to English and Korean.
        blocks.append(("topics", TfidfVectorizer(analyzer=lexicon.topics, sublinear_tf=True)))
        weights["topics"] = TOPIC_WEIGHT
    if model == "logistic":
        regression = LogisticRegression(C=c, max_iter=5000)
        return Pipeline([("features", FeatureUnion(blocks)), ("model", regression)])
    union = FeatureUnion(blocks, transformer_weights=weights)
    return Pipeline([("features", union), ("model", CalibratedLinearSVC(c=c))])


def _fit(examples: Sequence[Example], *, c: float, model: ModelKind) -> Pipeline:
    texts = [normalise(example.text) for example in examples]
    pipeline = build_pipeline(
        model=model,
        c=c,
        words=any(re.search(WORD_PATTERN, text) for text in texts),
        topics=any(lexicon.topics(text) for text in texts),
    )
    return pipeline.fit(texts, [example.label for example in examples])


@dataclass(frozen=True)
class _Block:
    analyzer: Callable[[str], list[str]]
    vocabulary: dict[str, int]
    idf: np.ndarray
    offset: int
    weight: float


class _FastScorer:
    """The fitted pipeline's arithmetic without scikit-learn's per-call checks, for one text.

    scikit-learn validates and converts on every transform, which costs more than the sums for a
    single short text. This reproduces TfidfVectorizer (sublinear tf, idf, l2 norm per block),
    the union (with its block weights) and the softmax of the linear model exactly; a test holds
    it to predict_proba. It reads only `coef_`, `intercept_` and `classes_` of the model, so it
    serves a multinomial logistic regression as well as the calibrated SVM.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        union: FeatureUnion = pipeline.named_steps["features"]
        model = pipeline.named_steps["model"]
        block_weights = union.transformer_weights or {}
        blocks, offset = [], 0
        for name, vectorizer in union.transformer_list:
            vocabulary = {str(k): int(v) for k, v in vectorizer.vocabulary_.items()}
            weight = float(block_weights.get(name, 1.0))
            blocks.append(
                _Block(vectorizer.build_analyzer(), vocabulary, vectorizer.idf_, offset, weight)
            )
            offset += len(vocabulary)
        self.blocks = tuple(blocks)
        # Transposed and contiguous so one row of features picks rows of weights.
        coef, intercept = model.coef_, model.intercept_
        if coef.shape[0] == 1:
            # Two classes: one weight row for the second class; softmax of (0, s) is sigmoid(s).
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([[0.0], intercept])
        self.weights = np.ascontiguousarray(coef.T)
        self.intercept = np.asarray(intercept, dtype=float)
        self.classes = tuple(str(label) for label in model.classes_)

    def probabilities(self, text: str) -> np.ndarray:
        columns: list[int] = []
        values: list[float] = []
        for block in self.blocks:
            counts = Counter(block.analyzer(text))
            found = [(block.vocabulary[t], n) for t, n in counts.items() if t in block.vocabulary]
            if not found:
                continue
            weights = [(1.0 + math.log(n)) * float(block.idf[i]) for i, n in found]
            scale = block.weight / math.sqrt(sum(w * w for w in weights))
            columns.extend(block.offset + i for i, _ in found)
            values.extend(w * scale for w in weights)
        scores = self.intercept.copy()
        if columns:
            scores += np.asarray(values) @ self.weights[columns]
        scores -= scores.max()
        exp = np.exp(scores)
        result: np.ndarray = exp / exp.sum()
        return result


def _ranked(classes: Sequence[str], probabilities: np.ndarray) -> tuple[tuple[str, float], ...]:
    order = np.argsort(-probabilities, kind="stable")[:TOP_K]
    return tuple((classes[i], float(probabilities[i])) for i in order)


class Classifier:
    """A trained category model, with an optional urgency model beside it."""

    def __init__(
        self, *, header: ModelHeader, category_model: Pipeline, urgency_model: Pipeline | None
    ) -> None:
        self.header = header
        self.category_model = category_model
        self.urgency_model = urgency_model
        self._category = _FastScorer(category_model)
        self._urgency = _FastScorer(urgency_model) if urgency_model is not None else None

    @property
    def categories(self) -> tuple[str, ...]:
        """The categories this model knows."""
        return self._category.classes

    def predict(self, text: str) -> Prediction:
        """The category of one transcript."""
        probabilities = self._category.probabilities(normalise(text))
        top = _ranked(self._category.classes, probabilities)
        return Prediction(category=top[0][0], confidence=top[0][1], top=top)

    def predict_many(self, texts: Iterable[str]) -> list[Prediction]:
        """The categories of many transcripts, vectorised in one pass."""
        normalised = [normalise(text) for text in texts]
        if not normalised:
            return []
        matrix = self.category_model.predict_proba(normalised)
        classes = self._category.classes
        predictions = []
        for row in matrix:
            top = _ranked(classes, row)
            predictions.append(Prediction(category=top[0][0], confidence=top[0][1], top=top))
        return predictions

    def predict_urgency(self, text: str) -> UrgencyPrediction | None:
        """The urgency model's view of one transcript, or None when no urgency model was trained."""
        if self._urgency is None:
            return None
        probabilities = self._urgency.probabilities(normalise(text))
        top = _ranked(self._urgency.classes, probabilities)
        return UrgencyPrediction(urgency=top[0][0], confidence=top[0][1], top=top)

    def save(self, path: Path) -> None:
        """Write the model: magic line, JSON header line, joblib payload."""
        header = json.dumps(asdict(self.header), ensure_ascii=False, sort_keys=True)
        with path.open("wb") as file:
            file.write(MAGIC)
            file.write(header.encode() + b"\n")
            joblib.dump({"category": self.category_model, "urgency": self.urgency_model}, file)

    @classmethod
    def load(cls, path: Path) -> Classifier:
        """Read a saved model; refuse another format or scikit-learn version before unpickling."""
        with path.open("rb") as file:
            if file.readline() != MAGIC:
                raise ModelFormatError(f"{path} is not a routing model")
            header = read_header_line(file.readline(), path=path)
            payload = joblib.load(file)
        return cls(
            header=header, category_model=payload["category"], urgency_model=payload["urgency"]
        )


def read_header_line(line: bytes, *, path: Path) -> ModelHeader:
    """Parse and check a saved model's header line."""
    try:
        data: dict[str, Any] = json.loads(line)
    except ValueError as error:
        raise ModelFormatError(f"{path}: unreadable model header") from error
    if data.get("format_version") != FORMAT_VERSION:
        raise ModelVersionError(
            f"{path}: model format {data.get('format_version')!r}, this code reads "
            f"{FORMAT_VERSION}; retrain it"
        )
    if data.get("sklearn_version") != sklearn.__version__:
        raise ModelVersionError(
            f"{path} was trained with scikit-learn {data.get('sklearn_version')}, but "
            f"{sklearn.__version__} is installed; retrain the model (python -m routing.classifier) "
            "or install the version it was trained with"
        )
    data["categories"] = tuple(data["categories"])
    data["urgencies"] = tuple(data["urgencies"])
    return ModelHeader(**data)


def train(
    examples: Sequence[Example],
    *,
    urgency_examples: Sequence[Example] = (),
    c: float = DEFAULT_C,
    urgency_c: float = URGENCY_C,
) -> Classifier:
    """Fit the category model (and the urgency model when urgency examples are given)."""
    if not examples:
        raise ValueError("no examples to train on")
    category_model = _fit(examples, c=c, model="svm")
    urgency_model = (
        _fit(urgency_examples, c=urgency_c, model="logistic") if urgency_examples else None
    )
    header = ModelHeader(
        format_version=FORMAT_VERSION,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        corpus_sha256=corpus_hash([*examples, *urgency_examples]),
        sklearn_version=sklearn.__version__,
        categories=tuple(str(label) for label in category_model.classes_),
        urgencies=tuple(str(label) for label in urgency_model.classes_) if urgency_model else (),
        examples=len(examples),
        urgency_examples=len(urgency_examples),
    )
    return Classifier(header=header, category_model=category_model, urgency_model=urgency_model)


def main(argv: Sequence[str] | None = None) -> int:
    """Train on the shipped corpora and save the model: python -m routing.classifier PATH."""
    import argparse

    from routing.corpus import load_category_examples, load_urgency_examples

    parser = argparse.ArgumentParser(description="Train the routing models and save them.")
    parser.add_argument("path", type=Path, help="where to write the model file")
    args = parser.parse_args(argv)
    classifier = train(load_category_examples(), urgency_examples=load_urgency_examples())
    classifier.save(args.path)
    print(json.dumps(asdict(classifier.header), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
