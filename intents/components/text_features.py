"""Text normalisation, tokenisation and the stacked TF-IDF intent model.

This module has no Rasa imports: it depends on numpy, scipy and scikit-learn only (plus
jieba, optionally, for Chinese word segmentation), so the model can be trained and
evaluated outside Rasa (e.g. in a tuning harness). `tfidf_classifier.py` wraps it as a
Rasa graph component. README.md in this folder describes the model and how it was tuned.

The model
---------
Features (TF-IDF, sublinear tf, each block l2-normalised):

* ``word``:  1-2 grams over word tokens. English words are Porter-stemmed; Chinese runs are
  segmented with jieba (or split into single characters when jieba is unavailable).
* ``char``:  ``char_wb`` n-grams (default 1-5) over the normalised text. Works for
  unsegmented Chinese, typos and unseen inflections.
* ``pair``:  unordered pairs of the content tokens of a message (stop words removed), a
  cheap stand-in for word interactions ("card" + "declin" anywhere in the sentence).
* ``char2``: plain ``char`` n-grams (default 1-6) that also cross word boundaries; only for
  the second base model.

Three base models score every intent:

1. ``svm``:  one-vs-rest ``LinearSVC`` on word + char + pair;
2. ``char``: one-vs-rest ``LinearSVC`` on char2 alone (a different view of the text);
3. ``knn``:  for each intent, the mean cosine similarity of the ``knn_k`` most similar
   training messages of that intent (word + char + pair space).

A multinomial logistic regression (the meta-learner) is fitted on their *out-of-fold* scores
(``stack_folds``-fold cross-validation on the training data, scores standardised per base
model): it learns how far to trust each model and which intents each one confuses. Its
logits are divided by a temperature fitted on out-of-fold meta predictions (minimum negative
log-likelihood), so that the top confidence is calibrated and usable for a fallback
threshold.

With ``stack: false`` (or when the data are too small to build folds) the model is the single
``svm`` with a softmax over its margins, the temperature fitted on out-of-fold margins
(``calibration_folds``), as before.
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

from intents.components._porter import stem as _porter_stem
from intents.components._zh_variants import to_simplified

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- normalisation

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_URL = re.compile(r"(?:https?://|www\.)\S+")
_EMAIL = re.compile(r"[a-z0-9_.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+")
# Long ids that mix letters and digits: wallet addresses, tx hashes, order / ticket ids.
_LONG_ID = re.compile(r"(?<![a-z0-9])(?=[a-z]*[0-9])(?=[0-9]*[a-z])[a-z0-9]{12,}(?![a-z0-9])")
_HEX = re.compile(r"(?<![a-z0-9])0x[0-9a-f]{6,}(?![a-z0-9])")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CONTRACTIONS = [
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"'s\b"), ""),
]
_SYMBOLS = {
    "$": " usd ",
    "£": " gbp ",
    "€": " eur ",
    "¥": " cny ",
    "₿": " btc ",
    "%": " percent ",
}
# Chat spellings -> the words the training data mostly use (applied to whole ASCII words after
# punctuation is gone; hand-made and deliberately small: only unambiguous forms).
EN_VARIANTS: Dict[str, str] = {
    "dont": "do not", "doesnt": "does not", "didnt": "did not", "cant": "can not",
    "couldnt": "could not", "wont": "will not", "wouldnt": "would not", "isnt": "is not",
    "arent": "are not", "wasnt": "was not", "werent": "were not", "havent": "have not",
    "hasnt": "has not", "hadnt": "had not", "shouldnt": "should not", "im": "i am",
    "ive": "i have", "whats": "what is", "wheres": "where is", "hows": "how is",
    "pls": "please", "plz": "please", "thx": "thanks", "thanx": "thanks", "u": "you",
    "ur": "your", "acct": "account", "pwd": "password", "passwd": "password",
    "txn": "transaction", "txns": "transactions", "addr": "address", "topup": "top up",
    "topups": "top ups",
}
_NON_WORD = re.compile(r"[\W_]+")
_CJK_BOUNDARY = re.compile(rf"(?<=[{_CJK}])(?=[^{_CJK}\s])|(?<=[^{_CJK}\s])(?=[{_CJK}])")
_IS_CJK = re.compile(rf"[{_CJK}]")
_ASCII_ALPHA = re.compile(r"^[a-z]+$")
_E_MAIL = re.compile(r"\be-mail")


def normalise(text: str, variants: bool = True) -> str:
    """Lower-cased, NFKC-normalised text with placeholders for ids, urls, emails and numbers.

    Punctuation becomes a space, and Chinese runs are separated from Latin runs by a space so
    that ``char_wb`` n-grams and tokens do not straddle scripts ("我的usdt没到" -> "我的 usdt
    没到"). With `variants`, traditional Chinese characters become simplified ones
    (`_zh_variants`) and a few chat spellings become words ("dont" -> "do not"); models
    trained before that step existed use ``variants=False``.
    """
    if not text:
        return ""
    t = unicodedata.normalize("NFKC", text).lower()
    if variants:
        t = to_simplified(t)
    t = t.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    t = _URL.sub(" urltoken ", t)
    t = _EMAIL.sub(" emailtoken ", t)
    t = _HEX.sub(" idtoken ", t)
    t = _LONG_ID.sub(" idtoken ", t)
    if variants:
        t = _E_MAIL.sub("email", t)
    for pattern, repl in _CONTRACTIONS:
        t = pattern.sub(repl, t)
    for sym, repl in _SYMBOLS.items():
        if sym in t:
            t = t.replace(sym, repl)
    t = _NUMBER.sub(" 0 ", t)
    t = _NON_WORD.sub(" ", t)
    t = _CJK_BOUNDARY.sub(" ", t)
    if variants:
        return " ".join(EN_VARIANTS.get(w, w) for w in t.split())
    return " ".join(t.split())


# ---------------------------------------------------------------------------- tokenisation

_STEM_CACHE: Dict[str, str] = {}


def _stem(word: str) -> str:
    s = _STEM_CACHE.get(word)
    if s is None:
        s = _porter_stem(word) if _ASCII_ALPHA.match(word) else word
        if len(_STEM_CACHE) < 200_000:
            _STEM_CACHE[word] = s
    return s


_jieba = None
_jieba_checked = False


def _get_jieba():
    global _jieba, _jieba_checked
    if not _jieba_checked:
        _jieba_checked = True
        try:
            import jieba  # type: ignore

            jieba.setLogLevel(logging.WARNING)
            _jieba = jieba
        except Exception:  # pragma: no cover - jieba is optional
            logger.info("jieba not available; Chinese text is split into characters")
            _jieba = None
    return _jieba


def tokenize(norm_text: str, stem: bool = True, use_jieba: bool = True) -> List[str]:
    """Word tokens of a *normalised* text (see `normalise`)."""
    out: List[str] = []
    for chunk in norm_text.split():
        if _IS_CJK.match(chunk):
            jb = _get_jieba() if use_jieba else None
            if jb is not None:
                out.extend(w for w in jb.lcut(chunk) if w.strip())
            else:
                out.extend(chunk)
        else:
            out.append(_stem(chunk) if stem else chunk)
    return out


STOP_WORDS = frozenset(
    # English function words (stemmed forms are identical for these)
    "i me my a an the to is am are was be been it this that of for in on do does did "
    "have has had can could would will should you your we our please and or so with "
    # Chinese particles and pronouns
    "的 了 吗 呢 吧 啊 呀 嘛 哦 我 你 您 他 她 它 我们 你们 是 在 和 与 及 请 一下 这 那 这个 那个 个 就 也 都".split()
)


class WordNgrams:
    """Analyzer: contiguous n-grams (lo..hi) over a token list."""

    def __init__(self, lo: int = 1, hi: int = 2) -> None:
        self.lo, self.hi = lo, hi

    def __call__(self, tokens: Sequence[str]) -> List[str]:
        out = list(tokens) if self.lo <= 1 else []
        for n in range(max(2, self.lo), self.hi + 1):
            out.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        return out


class ContentPairs:
    """Analyzer: unordered pairs of distinct content tokens (stop words removed)."""

    def __init__(self, max_tokens: int = 32) -> None:
        self.max_tokens = max_tokens

    def __call__(self, tokens: Sequence[str]) -> List[str]:
        seen: Dict[str, None] = {}
        for w in tokens:
            if w not in STOP_WORDS and w not in seen:
                seen[w] = None
                if len(seen) >= self.max_tokens:
                    break
        ws = sorted(seen)
        return [a + "|" + b for i, a in enumerate(ws) for b in ws[i + 1 :]]


# ----------------------------------------------------------------------------------- model

DEFAULTS: Dict[str, Any] = {
    # features
    "word_ngram_range": [1, 2],
    "char_ngram_range": [1, 5],
    "char_analyzer": "char_wb",
    "use_word_pairs": True,
    "max_pair_tokens": 32,
    "pair_min_df": 2,
    "stem_english": True,
    "use_jieba": True,
    "sublinear_tf": True,
    "min_df": 1,
    "block_weights": {"word": 1.0, "char": 1.0, "pair": 1.0},
    # base model 1: LinearSVC on word + char + pair
    "C": 0.5,
    "class_weight": None,
    "max_iter": 2000,
    "tol": 1e-4,
    # stacking: base model 2 (LinearSVC on plain char n-grams; [] disables it), base model 3
    # (k nearest neighbours per intent; 0 disables it) and the meta-learner
    "stack": True,
    "char2_ngram_range": [1, 6],
    "char2_min_df": 1,
    "char2_C": 0.5,
    "knn_k": 5,
    "stack_folds": 5,
    "meta_C": 0.01,
    "meta_max_iter": 60,
    "meta_class_weight": None,
    # single-model mode (stack: false, or too little data for folds)
    "calibration_folds": 3,
    "default_temperature": 0.2,
    # worker threads for the fold models (liblinear and BLAS release the GIL)
    "n_jobs": 2,
    "random_state": 42,
}


def _linear_svc(C: float, p: Dict[str, Any]):
    from sklearn.svm import LinearSVC

    return LinearSVC(
        C=C, class_weight=p["class_weight"], tol=p["tol"], max_iter=p["max_iter"], random_state=p["random_state"]
    )


def _fit_quietly(clf, X, y):
    with warnings.catch_warnings():
        # liblinear / lbfgs ConvergenceWarning on tiny data sets
        warnings.simplefilter("ignore")
        return clf.fit(X, y)


def _margins(clf, X, n_classes: int) -> np.ndarray:
    """(n, n_classes) decision values of `clf`; columns of classes it never saw are NaN."""
    d = clf.decision_function(X)
    if d.ndim == 1:  # binary problem: one margin for classes_[1]
        d = np.stack([-d, d], axis=1)
    if len(clf.classes_) == n_classes:
        return np.asarray(d, dtype=np.float64)
    full = np.full((d.shape[0], n_classes), np.nan)
    full[:, clf.classes_] = d
    return full


def _full_coef(clf, n_classes: int, binary_scale: float) -> Tuple[np.ndarray, np.ndarray]:
    """(n_classes, n_features) weights and (n_classes,) intercepts of a linear classifier
    trained on a subset of the classes (missing classes get an intercept of -1e4).

    A binary model has one weight vector w for classes_[1]; class 0 gets -w. `binary_scale`
    is 1 for an SVM (margins +-m, as one-vs-rest would give) and 0.5 for a logistic regression
    (softmax of +-z/2 is exactly its sigmoid of z).
    """
    coef, intercept = np.asarray(clf.coef_), np.asarray(clf.intercept_)
    if coef.shape[0] == 1 and len(clf.classes_) == 2:
        coef = np.vstack([-coef[0], coef[0]]) * binary_scale
        intercept = np.array([-intercept[0], intercept[0]]) * binary_scale
    W = np.zeros((n_classes, coef.shape[1]))
    b = np.full(n_classes, -1e4)
    W[clf.classes_] = coef
    b[clf.classes_] = intercept
    return W, b


def _stratified_splits(y: np.ndarray, k: int, folds: int, seed: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    """k-fold splits (stratified, shuffled) whose training part has at least two classes."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=k)
    if folds < 2 or counts.max() < 2 or len(y) < 2 * folds:
        return []
    folds = int(min(folds, counts.max()))
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "least populated class has only n members"
        return [(tr, va) for tr, va in skf.split(np.zeros(len(y)), y) if len(np.unique(y[tr])) >= 2]


def _class_index(y: np.ndarray, k: int) -> np.ndarray:
    """(k, max class size) row numbers of each class's examples, padded with len(y)."""
    counts = np.bincount(y, minlength=k)
    index = np.full((k, max(1, int(counts.max()))), len(y), dtype=np.int64)
    for c in range(k):
        rows = np.flatnonzero(y == c)
        index[c, : len(rows)] = rows
    return index


def _knn_scores(sims: np.ndarray, index: np.ndarray, knn_k: int) -> np.ndarray:
    """Per class, the mean of the `knn_k` largest similarities (fewer if the class is smaller).

    `sims` (n, N) are cosine similarities of non-negative vectors, so they are >= 0; the
    padding column gets -1 and is clipped to 0 after the top-k selection.
    """
    n, N = sims.shape
    k, width = index.shape
    kk = min(knn_k, width)
    sizes = np.minimum((index < N).sum(axis=1), kk)
    out = np.zeros((n, k))
    step = max(1, 2_000_000 // max(1, k * width))
    for lo in range(0, n, step):
        block = np.concatenate([sims[lo : lo + step], -np.ones((min(step, n - lo), 1), sims.dtype)], axis=1)
        s = block[:, index]  # (rows, k, width)
        if kk < width:
            s = np.partition(s, width - kk, axis=2)[:, :, width - kk :]
        out[lo : lo + step] = np.clip(s, 0.0, None).sum(axis=2) / np.maximum(sizes, 1)
    return out


def _fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Softmax temperature minimising the negative log-likelihood of `y`."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    rows = np.arange(len(y))

    def nll(log_scale: float) -> float:
        return -log_softmax(logits * np.exp(log_scale), axis=1)[rows, y].mean()

    res = minimize_scalar(nll, bounds=(-3.0, 6.0), method="bounded")
    return float(np.exp(-res.x))


def _softmax_regression(
    F: np.ndarray, y: np.ndarray, n_classes: int, C: float, max_iter: int, balanced: bool = False
) -> Tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression (the meta-learner): minimises the summed log-loss plus
    ||W||^2 / (2C), like scikit-learn's ``LogisticRegression(C=C)``, with L-BFGS on float32
    products (several times faster than scikit-learn's solver for this dense problem).
    `balanced` weighs examples by n / (n_classes_present * class size), like
    ``class_weight="balanced"``: the intercepts then do not learn the training set's class
    frequencies as priors.

    Returns weights (n_classes, n_features) and intercepts (n_classes,); classes without a
    single example get an intercept of -1e4.
    """
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    n, d = F.shape
    F32 = np.ascontiguousarray(F, dtype=np.float32)
    counts = np.bincount(y, minlength=n_classes)
    Y = np.zeros((n, n_classes), dtype=np.float32)
    Y[np.arange(n), y] = 1.0
    if balanced:
        Y *= (n / ((counts > 0).sum() * np.maximum(counts, 1))).astype(np.float32)[y][:, None]
    row_weight = Y.sum(axis=1)

    def loss_grad(theta: np.ndarray) -> Tuple[float, np.ndarray]:
        W = theta[: n_classes * d].reshape(n_classes, d)
        logp = log_softmax(F32 @ W.T.astype(np.float32) + theta[n_classes * d :].astype(np.float32), axis=1)
        G = np.exp(logp) * row_weight[:, None] - Y
        loss = -float((logp * Y).sum(dtype=np.float64)) + 0.5 / C * float((W * W).sum())
        grad_w = (G.T @ F32).astype(np.float64) + W / C
        return loss, np.concatenate([grad_w.ravel(), G.sum(axis=0, dtype=np.float64)])

    res = minimize(
        loss_grad, np.zeros(n_classes * d + n_classes), jac=True, method="L-BFGS-B",
        options={"maxiter": int(max_iter)},
    )
    W = res.x[: n_classes * d].reshape(n_classes, d)
    b = res.x[n_classes * d :].copy()
    b[counts == 0] = -1e4
    return W, b


# Jobs for the worker processes (module-level functions, so that they can be pickled).
# Processes rather than threads: liblinear draws from one global random generator, so two fits
# running in threads of one process disturb each other's example order and the model would
# differ from run to run; separate processes keep training deterministic.


def _svm_task(
    M: sp.csr_matrix, y: np.ndarray, k: int, tr: Optional[np.ndarray], va: Optional[np.ndarray],
    C: float, p: Dict[str, Any],
) -> Any:
    """Fit a one-vs-rest LinearSVC on rows `tr` (all rows if None). Returns its margins on
    rows `va` (NaN for classes it never saw) or, without `va`, its (weights, intercepts)."""
    clf = _fit_quietly(_linear_svc(C, p), M if tr is None else M[tr], y if tr is None else y[tr])
    return _full_coef(clf, k, 1.0) if va is None else _margins(clf, M[va], k)


def _knn_task(Xn: sp.csr_matrix, y: np.ndarray, k: int, tr: np.ndarray, va: np.ndarray, knn_k: int) -> np.ndarray:
    """kNN scores of rows `va` against the examples in rows `tr` (rows are l2-normalised)."""
    index = _class_index(y[tr], k)
    Xt = Xn[tr].T.tocsr()
    out = np.zeros((len(va), k))
    for lo in range(0, len(va), 1024):
        out[lo : lo + 1024] = _knn_scores((Xn[va[lo : lo + 1024]] @ Xt).toarray(), index, knn_k)
    return out


def _meta_task(
    F: np.ndarray, y: np.ndarray, k: int, rows: Optional[np.ndarray], p: Dict[str, Any]
) -> Tuple[np.ndarray, np.ndarray]:
    Fr, yr = (F, y) if rows is None else (F[rows], y[rows])
    return _softmax_regression(Fr, yr, k, p["meta_C"], p["meta_max_iter"], p["meta_class_weight"] == "balanced")


def _parallel(tasks: Sequence[Tuple[Callable[..., Any], Tuple[Any, ...]]], n_jobs: int) -> List[Any]:
    """Run `(function, args)` tasks, in `n_jobs` worker processes (joblib/loky; the workers are
    reused between calls and get one BLAS thread each) or in this process if n_jobs <= 1."""
    if n_jobs <= 1 or len(tasks) <= 1:
        return [fn(*args) for fn, args in tasks]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs, backend="loky")(delayed(fn)(*args) for fn, args in tasks)


class TfidfSvmIntentModel:
    """TF-IDF features; linear SVMs + kNN stacked by a logistic regression; calibrated softmax."""

    # Defaults for attributes that models pickled by older versions of this class lack: such
    # a model is a single SVM over version-1 normalisation and keeps predicting as before.
    text_version_: int = 1
    mode_: str = "svm"
    char2_vectorizer: Any = None
    char2_coef_: Optional[np.ndarray] = None
    char2_intercept_: Optional[np.ndarray] = None
    knn_X_: Optional[sp.csc_matrix] = None
    knn_index_: Optional[np.ndarray] = None
    meta_coef_: Optional[np.ndarray] = None
    meta_intercept_: Optional[np.ndarray] = None
    meta_scale_: Optional[np.ndarray] = None
    meta_blocks_: List[str] = []

    def __init__(self, **params: Any) -> None:
        unknown = set(params) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown parameters: {sorted(unknown)}")
        self.params: Dict[str, Any] = {**DEFAULTS, **params}
        self.vectorizers: Dict[str, Any] = {}
        self.classes_: List[str] = []
        self.coef_: Optional[np.ndarray] = None  # (n_features, n_classes) float32
        self.intercept_: Optional[np.ndarray] = None  # (n_classes,)
        self.temperature_: float = float(self.params["default_temperature"])
        self.n_features_: int = 0
        self.text_version_ = 2

    # -- features ---------------------------------------------------------------------

    def _normalise(self, text: str) -> str:
        return normalise(text or "", variants=self.text_version_ >= 2)

    def _prepare(self, texts: Iterable[str]) -> Tuple[List[str], List[List[str]]]:
        p = self.params
        norms = [self._normalise(t) for t in texts]
        toks = [tokenize(n, stem=p["stem_english"], use_jieba=p["use_jieba"]) for n in norms]
        return norms, toks

    def _make_vectorizers(self) -> Dict[str, Any]:
        from sklearn.feature_extraction.text import TfidfVectorizer

        p = self.params
        common = dict(sublinear_tf=p["sublinear_tf"], min_df=p["min_df"], dtype=np.float32)
        lo, hi = p["word_ngram_range"]
        vecs = {
            "word": TfidfVectorizer(analyzer=WordNgrams(lo, hi), lowercase=False, **common),
            "char": TfidfVectorizer(
                analyzer=p["char_analyzer"],
                ngram_range=tuple(p["char_ngram_range"]),
                lowercase=False,
                **common,
            ),
        }
        if p["use_word_pairs"]:
            vecs["pair"] = TfidfVectorizer(
                analyzer=ContentPairs(p["max_pair_tokens"]),
                lowercase=False,
                **{**common, "min_df": p["pair_min_df"]},
            )
        return vecs

    @staticmethod
    def _inputs(name: str, norms: List[str], toks: List[List[str]]) -> List[Any]:
        return norms if name in ("char", "char2") else toks

    def _fit_features(self, norms: List[str], toks: List[List[str]]) -> sp.csr_matrix:
        self.vectorizers = {}
        blocks = []
        weights = self.params["block_weights"] or {}
        for name, vec in self._make_vectorizers().items():
            try:
                m = vec.fit_transform(self._inputs(name, norms, toks))
            except ValueError:  # empty vocabulary (e.g. no Chinese/English content at all)
                continue
            self.vectorizers[name] = vec
            blocks.append(m * float(weights.get(name, 1.0)))
        if not blocks:
            raise ValueError("no features could be extracted from the training texts")
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    def _fit_char2(self, norms: List[str]) -> Optional[sp.csr_matrix]:
        from sklearn.feature_extraction.text import TfidfVectorizer

        p = self.params
        self.char2_vectorizer = None
        if not p["char2_ngram_range"]:
            return None
        vec = TfidfVectorizer(
            analyzer="char",
            ngram_range=tuple(p["char2_ngram_range"]),
            lowercase=False,
            sublinear_tf=p["sublinear_tf"],
            min_df=p["char2_min_df"],
            dtype=np.float32,
        )
        try:
            X = vec.fit_transform(norms).tocsr()
        except ValueError:
            return None
        self.char2_vectorizer = vec
        return X

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Word + char + pair features (the first base model's input) of `texts`."""
        norms, toks = self._prepare(texts)
        weights = self.params["block_weights"] or {}
        blocks = [
            vec.transform(self._inputs(name, norms, toks)) * float(weights.get(name, 1.0))
            for name, vec in self.vectorizers.items()
        ]
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    # -- training ---------------------------------------------------------------------

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> "TfidfSvmIntentModel":
        if len(texts) != len(labels) or not texts:
            raise ValueError("need the same, non-zero number of texts and labels")
        p = self.params
        self.text_version_ = 2
        # A canonical order (by intent, then text): the folds and liblinear's example order
        # then depend on the set of examples only, not on the order of the training files.
        order = sorted(range(len(texts)), key=lambda i: (labels[i], texts[i]))
        texts = [texts[i] for i in order]
        labels = [labels[i] for i in order]
        norms, toks = self._prepare(texts)
        X = self._fit_features(norms, toks)
        self.n_features_ = X.shape[1]
        self.classes_ = sorted(set(labels))
        y = np.searchsorted(np.array(self.classes_), np.array(labels))
        k = len(self.classes_)
        self.mode_ = "svm"
        if k == 1:  # nothing to discriminate: every message with features gets this intent
            self.coef_ = np.zeros((X.shape[1], 1), dtype=np.float32)
            self.intercept_ = np.zeros(1)
            self.temperature_ = 1.0
            return self
        # Stacking needs every intent in every fold, with a few examples each (>= 2 per fold);
        # below that the single SVM is the more reliable model.
        folds = int(p["stack_folds"] or 0)
        stackable = p["stack"] and folds >= 2 and np.bincount(y, minlength=k).min() >= 2 * folds
        splits = _stratified_splits(y, k, folds, p["random_state"]) if stackable else []
        Xc = self._fit_char2(norms) if splits else None
        if splits and (Xc is not None or int(p["knn_k"] or 0) > 0):
            self._fit_stacked(X, Xc, y, k, splits)
        else:
            self.char2_vectorizer = None
            (W, b), self.temperature_ = self._fit_svm_and_temperature(X, y, k)
            self.coef_ = np.ascontiguousarray(W.T, dtype=np.float32)
            self.intercept_ = b
        return self

    def _fit_stacked(
        self,
        X: sp.csr_matrix,
        Xc: Optional[sp.csr_matrix],
        y: np.ndarray,
        k: int,
        splits: List[Tuple[np.ndarray, np.ndarray]],
    ) -> None:
        """Base models on every fold (out-of-fold scores) and on all data, then the meta-learner."""
        from sklearn.preprocessing import normalize

        p = self.params
        knn_k = int(p["knn_k"] or 0)
        # Canonical CSR (sorted indices, no duplicates): the worker processes get the matrices
        # read-only (memory-mapped), and scikit-learn would otherwise sort them in place.
        X.sum_duplicates()
        if Xc is not None:
            Xc.sum_duplicates()
        Xn = normalize(X).tocsr() if knn_k > 0 else None
        if Xn is not None:
            Xn.sum_duplicates()

        # The slowest jobs first, so that the workers finish at about the same time.
        n_jobs = int(p["n_jobs"] or 1)
        names: List[str] = []
        tasks: List[Tuple[Callable[..., Any], Tuple[Any, ...]]] = []
        bases = [("svm", X, p["C"])]
        if Xc is not None:
            bases.insert(0, ("char", Xc, p["char2_C"]))
        for name, M, C in bases:
            for f, (tr, va) in enumerate(splits):
                names.append(f"{name}:{f}")
                tasks.append((_svm_task, (M, y, k, tr, va, C, p)))
            names.append(f"{name}:final")
            tasks.append((_svm_task, (M, y, k, None, None, C, p)))
        if knn_k > 0:
            for f, (tr, va) in enumerate(splits):
                names.append(f"knn:{f}")
                tasks.append((_knn_task, (Xn, y, k, tr, va, knn_k)))
        t0 = time.perf_counter()
        results = dict(zip(names, _parallel(tasks, n_jobs)))
        t1 = time.perf_counter()

        self.meta_blocks_ = [b[0] for b in bases] + (["knn"] if knn_k > 0 else [])
        covered = np.zeros(len(y), dtype=bool)
        for _, va in splits:
            covered[va] = True
        oof: List[np.ndarray] = []
        for name in self.meta_blocks_:
            s = np.zeros((len(y), k))
            for f, (_, va) in enumerate(splits):
                s[va] = results[f"{name}:{f}"]
            low = np.nanmin(s[covered]) if np.isfinite(s[covered]).any() else 0.0
            oof.append(np.where(np.isnan(s), low, s)[covered])
        self.meta_scale_ = np.array([[b.mean(), b.std() or 1.0] for b in oof])
        F = np.hstack([(b - m) / sd for b, (m, sd) in zip(oof, self.meta_scale_)])
        yc = y[covered]

        W, b = results["svm:final"]
        self.coef_ = np.ascontiguousarray(W.T, dtype=np.float32)
        self.intercept_ = b
        if Xc is not None:
            W, b = results["char:final"]
            self.char2_coef_ = np.ascontiguousarray(W.T, dtype=np.float32)
            self.char2_intercept_ = b
        else:
            self.char2_vectorizer = self.char2_coef_ = self.char2_intercept_ = None
        if knn_k > 0:
            self.knn_X_ = Xn.tocsc()
            self.knn_index_ = _class_index(y, k)
        else:
            self.knn_X_ = self.knn_index_ = None

        # Meta-learner on all out-of-fold scores; its temperature from a 2-fold split of them.
        halves = _stratified_splits(yc, k, 2, p["random_state"] + 1)
        fitted = _parallel([(_meta_task, (F, yc, k, rows, p)) for rows in [None] + [tr for tr, _ in halves]], n_jobs)
        self.meta_coef_, self.meta_intercept_ = fitted[0]
        logits = np.zeros((len(yc), k))
        usable = np.zeros(len(yc), dtype=bool)
        for (tr, va), (W, b) in zip(halves, fitted[1:]):
            logits[va] = F[va] @ W.T + b
            usable[va] = np.isin(yc[va], yc[tr])
        self.temperature_ = _fit_temperature(logits[usable], yc[usable]) if usable.sum() >= 2 else 1.0
        logger.debug(
            f"stacked model: {len(tasks)} base-model jobs in {t1 - t0:.1f} s, "
            f"meta-learner in {time.perf_counter() - t1:.1f} s, temperature {self.temperature_:.3f}"
        )
        self.mode_ = "stack"
        self._round_to_half()

    def _fit_svm_and_temperature(self, X: sp.csr_matrix, y: np.ndarray, k: int):
        """Single-model mode: the SVM's (weights, intercepts) and a softmax temperature fitted
        on the out-of-fold margins of SVMs trained on k folds."""
        p = self.params
        default = float(p["default_temperature"])
        splits = _stratified_splits(y, k, int(p["calibration_folds"] or 0), p["random_state"])

        X.sum_duplicates()  # canonical: the workers get it read-only
        tasks = [(_svm_task, (X, y, k, None, None, p["C"], p))]
        tasks += [(_svm_task, (X, y, k, tr, va, p["C"], p)) for tr, va in splits]
        fitted = _parallel(tasks, int(p["n_jobs"] or 1))
        final, fold_margins = fitted[0], fitted[1:]
        if not fold_margins:
            return final, default
        oof = np.zeros((X.shape[0], k))
        usable = np.zeros(X.shape[0], dtype=bool)
        for (tr, va), margins in zip(splits, fold_margins):
            oof[va] = np.nan_to_num(margins, nan=-1e4)
            usable[va] = np.isin(y[va], y[tr])
        if usable.sum() < 2:
            return final, default
        return final, _fit_temperature(oof[usable], y[usable])

    # -- prediction -------------------------------------------------------------------

    def predict_proba(self, texts: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
        """Class probabilities (n, n_classes) and a mask of rows that had any feature.

        Rows without a single known feature (empty text, only punctuation, unseen script)
        get all-zero probabilities: the caller should report "no intent".
        """
        if self.coef_ is None:
            raise RuntimeError("model is not trained")
        k = len(self.classes_)
        probs = np.zeros((len(texts), k))
        has_features = np.zeros(len(texts), dtype=bool)
        logits = np.zeros((len(texts), k))
        for i, text in enumerate(texts):
            (cols, vals), extra = self._sparse_rows(text)
            if not len(cols) and (extra is None or not len(extra[0])):
                continue
            has_features[i] = True
            if k > 1:
                logits[i] = self._logits(cols, vals, extra)
        if k == 1:
            probs[has_features] = 1.0
        elif has_features.any():
            from scipy.special import softmax

            probs[has_features] = softmax(logits[has_features] / self.temperature_, axis=1)
        return probs, has_features

    def _logits(self, cols: np.ndarray, vals: np.ndarray, extra: Optional[Tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        svm = vals @ self.coef_[cols] + self.intercept_
        if self.mode_ != "stack":
            return svm
        scores = []
        for name in self.meta_blocks_:
            if name == "svm":
                scores.append(svm)
            elif name == "char":
                c2, v2 = extra if extra is not None else (np.zeros(0, dtype=np.int64), np.zeros(0))
                scores.append(v2 @ self.char2_coef_[c2] + self.char2_intercept_)
            else:  # knn
                norm = np.sqrt(vals @ vals)
                if norm > 0:
                    sims = self.knn_X_[:, cols] @ (vals / norm)
                    scores.append(_knn_scores(sims[None, :], self.knn_index_, int(self.params["knn_k"]))[0])
                else:
                    scores.append(np.zeros(len(self.classes_)))
        f = np.concatenate([(s - m) / sd for s, (m, sd) in zip(scores, self.meta_scale_)])
        return self.meta_coef_ @ f + self.meta_intercept_

    # Single-message featurisation without scikit-learn's per-call validation overhead
    # (about 10x faster for one message); gives the same values as `transform`.

    # A stacked model is stored compactly: float16 values, and the SVM weight matrices (about
    # 70% exact zeros: features seen only in non-support vectors) as a bitmap of the non-zero
    # entries plus their values. That makes the file about 4x smaller than float32, so Rasa
    # packs (gzip) and loads it much faster. In memory they are float32 arrays again; `fit`
    # rounds them to float16 too, so a loaded model predicts exactly like the trained one.
    _HALF = ("coef_", "char2_coef_", "knn_X_")

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_tables", None)
        if state.get("mode_") == "stack":
            for name in self._HALF:
                value = state.get(name)
                if isinstance(value, np.ndarray):
                    nonzero = value != 0
                    state[name] = {
                        "packed_shape": value.shape,
                        "bits": np.packbits(nonzero),
                        "values": value[nonzero].astype(np.float16),
                    }
                elif value is not None:
                    state[name] = value.astype(np.float16)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        for name in self._HALF:
            value = state.get(name)
            if isinstance(value, dict):
                shape = tuple(value["packed_shape"])
                nonzero = np.unpackbits(value["bits"], count=int(np.prod(shape))).reshape(shape).astype(bool)
                dense = np.zeros(shape, dtype=np.float32)
                dense[nonzero] = value["values"]
                state[name] = dense
            elif value is not None and value.dtype == np.float16:
                state[name] = value.astype(np.float32)
        self.__dict__.update(state)

    def _round_to_half(self) -> None:
        for name in self._HALF:
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.astype(np.float16).astype(np.float32))

    @staticmethod
    def _table(name: str, vec: Any, offset: int, weight: float) -> Tuple[Any, ...]:
        analyzer = vec.analyzer if callable(vec.analyzer) else vec.build_analyzer()
        idf = np.asarray(vec.idf_, dtype=np.float64) if vec.use_idf else None
        return (name, analyzer, vec.vocabulary_, idf, offset, weight, vec.sublinear_tf, vec.norm)

    def _fast_tables(self) -> Tuple[List[Tuple[Any, ...]], List[Tuple[Any, ...]]]:
        tables = getattr(self, "_tables", None)
        if tables is None:
            main = []
            offset = 0
            weights = self.params["block_weights"] or {}
            for name, vec in self.vectorizers.items():
                main.append(self._table(name, vec, offset, float(weights.get(name, 1.0))))
                offset += len(vec.vocabulary_)
            extra = [self._table("char2", self.char2_vectorizer, 0, 1.0)] if self.char2_vectorizer is not None else []
            tables = self._tables = (main, extra)
        return tables

    @staticmethod
    def _row(tables: List[Tuple[Any, ...]], norm_text: str, toks: List[str]) -> Tuple[np.ndarray, np.ndarray]:
        cols: List[np.ndarray] = []
        vals: List[np.ndarray] = []
        for name, analyzer, vocab, idf, offset, weight, sublinear, norm in tables:
            counts: Dict[int, int] = {}
            for feature in analyzer(norm_text if name in ("char", "char2") else toks):
                j = vocab.get(feature)
                if j is not None:
                    counts[j] = counts.get(j, 0) + 1
            if not counts:
                continue
            idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            v = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
            if sublinear:
                v = np.log(v) + 1.0
            if idf is not None:
                v *= idf[idx]
            if norm == "l2":
                v /= np.sqrt(v @ v)
            elif norm == "l1":
                v /= np.abs(v).sum()
            cols.append(idx + offset)
            vals.append(v * weight)
        if not cols:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        return np.concatenate(cols), np.concatenate(vals)

    def _sparse_rows(self, text: str) -> Tuple[Tuple[np.ndarray, np.ndarray], Optional[Tuple[np.ndarray, np.ndarray]]]:
        """(column indices, values) of one message in the word + char + pair space and, for a
        stacked model, in the char2 space (else None)."""
        p = self.params
        norm_text = self._normalise(text)
        toks = tokenize(norm_text, stem=p["stem_english"], use_jieba=p["use_jieba"])
        main, extra = self._fast_tables()
        return self._row(main, norm_text, toks), (self._row(extra, norm_text, toks) if extra else None)

    def _sparse_row(self, text: str) -> Tuple[np.ndarray, np.ndarray]:
        """(column indices, values) of one message's word + char + pair feature vector."""
        return self._sparse_rows(text)[0]

    def predict(self, texts: Sequence[str]) -> List[Optional[str]]:
        probs, ok = self.predict_proba(texts)
        return [self.classes_[i] if o else None for i, o in zip(probs.argmax(axis=1), ok)]
