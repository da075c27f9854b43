"""Rasa 3 graph component: stacked TF-IDF intent classifier (linear SVMs + kNN, logistic
regression meta-learner) with calibrated confidences.

Pipeline entry::

    - name: intents.components.tfidf_classifier.TfidfIntentClassifier

It builds its own features from ``message.get("text")`` (no featurizer needed before it)
and sets ``intent`` ``{"name", "confidence"}`` and ``intent_ranking`` (top
``ranking_length``) exactly like Rasa's built-in classifiers. See README.md in this folder.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Type

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from intents.components.text_features import DEFAULTS, TfidfSvmIntentModel

logger = logging.getLogger(__name__)

MODEL_FILE = "tfidf_svm_intent_model.joblib"
FORMAT_VERSION = 1


def _implementation_fingerprint() -> str:
    """Hash of this package's model code.

    Rasa's training cache keys a component on its config and on the source of the component
    *class* only; the model code lives in other modules, so its hash goes into the default
    config to make a code change invalidate cached training results.
    """
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in ("tfidf_classifier.py", "text_features.py", "_porter.py", "_zh_variants.py"):
        h.update(name.encode() + b"\0" + (here / name).read_bytes() + b"\0")
    return h.hexdigest()[:16]


_IMPLEMENTATION = _implementation_fingerprint()


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True
)
class TfidfIntentClassifier(IntentClassifier, GraphComponent):
    """Intent classifier on its own word / char / word-pair TF-IDF features (see README.md)."""

    @classmethod
    def required_components(cls) -> List[Type]:
        return []

    @staticmethod
    def required_packages() -> List[Text]:
        return ["sklearn", "scipy", "numpy", "joblib"]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **DEFAULTS,
            "ranking_length": 10,
            # not a setting: a hash of the model code, so that Rasa's cache notices changes
            "implementation_fingerprint": _IMPLEMENTATION,
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: Optional[TfidfSvmIntentModel] = None,
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.model = model

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        unknown = set(config) - set(cls.get_default_config())
        # Rasa itself adds a few keys (e.g. "name" is popped before, but be lenient).
        unknown -= {"name", "class"}
        if unknown:
            raise InvalidConfigException(
                f"{cls.__name__}: unknown parameter(s) {sorted(unknown)}; "
                f"known: {sorted(cls.get_default_config())}"
            )

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "TfidfIntentClassifier":
        cls.validate_config(config)
        return cls(config, model_storage, resource)

    def _model_params(self) -> Dict[Text, Any]:
        return {k: self.config[k] for k in DEFAULTS}

    # ------------------------------------------------------------------ training

    def train(self, training_data: TrainingData) -> Resource:
        texts: List[str] = []
        labels: List[str] = []
        for example in training_data.intent_examples:
            text = example.get(TEXT)
            intent = example.get(INTENT)
            # Messages built from stories/responses can carry an intent but no text.
            if not intent or not isinstance(text, str) or not text.strip():
                continue
            texts.append(text)
            labels.append(intent)

        if not texts:
            logger.warning(
                f"{self.__class__.__name__}: no training examples with text and intent; "
                f"the classifier will not predict intents."
            )
            self.model = None
            return self._resource

        if len(set(labels)) == 1:
            logger.warning(
                f"{self.__class__.__name__}: only one intent ('{labels[0]}') in the training "
                f"data; every message with known words gets it with confidence 1.0."
            )

        try:
            self.model = TfidfSvmIntentModel(**self._model_params()).fit(texts, labels)
        except ValueError as e:  # e.g. no features at all
            logger.warning(f"{self.__class__.__name__}: training skipped: {e}")
            self.model = None
            return self._resource

        logger.debug(
            f"{self.__class__.__name__}: {len(texts)} examples, "
            f"{len(self.model.classes_)} intents, {self.model.n_features_} features, "
            f"{self.model.mode_} model, softmax temperature {self.model.temperature_:.3f}"
        )
        self.persist()
        return self._resource

    # ---------------------------------------------------------------- inference

    def process(self, messages: List[Message]) -> List[Message]:
        todo: List[Message] = []
        for message in messages:
            text = message.get(TEXT)
            if self.model is None or not isinstance(text, str) or not text.strip():
                self._set_no_intent(message)
            else:
                todo.append(message)
        if not todo:
            return messages

        probs, has_features = self.model.predict_proba([m.get(TEXT) for m in todo])
        classes = self.model.classes_
        length = int(self.config["ranking_length"] or 0)
        for message, row, ok in zip(todo, probs, has_features):
            if not ok:  # not a single known word or character n-gram
                self._set_no_intent(message)
                continue
            order = row.argsort()[::-1]
            if length > 0:
                order = order[:length]
            ranking = [
                {INTENT_NAME_KEY: classes[i], PREDICTED_CONFIDENCE_KEY: float(row[i])}
                for i in order
            ]
            message.set(INTENT, dict(ranking[0]), add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages

    @staticmethod
    def _set_no_intent(message: Message) -> None:
        message.set(
            INTENT, {INTENT_NAME_KEY: None, PREDICTED_CONFIDENCE_KEY: 0.0}, add_to_output=True
        )
        message.set(INTENT_RANKING_KEY, [], add_to_output=True)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        # Not wired into the training graph by Rasa for classifiers; kept for API parity.
        return training_data

    # -------------------------------------------------------------- persistence

    def persist(self) -> None:
        import joblib

        with self._model_storage.write_to(self._resource) as model_dir:
            joblib.dump(
                {"format": FORMAT_VERSION, "model": self.model},
                model_dir / MODEL_FILE,
                compress=0,
            )

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "TfidfIntentClassifier":
        import joblib

        try:
            with model_storage.read_from(resource) as model_dir:
                path = model_dir / MODEL_FILE
                if not path.exists():
                    raise ValueError(f"{path} does not exist")
                # Our own model files only (pickle): never load a model from an untrusted source.
                blob = joblib.load(path)
        except ValueError as e:
            # Resource missing: the component was never trained (e.g. no training data).
            logger.debug(f"{cls.__name__}: no trained model in '{resource.name}' ({e}).")
            return cls(config, model_storage, resource)
        if not isinstance(blob, dict) or blob.get("format") != FORMAT_VERSION:
            raise InvalidConfigException(
                f"{cls.__name__}: model file format {blob.get('format') if isinstance(blob, dict) else '?'} "
                f"is not {FORMAT_VERSION}; retrain the model."
            )
        return cls(config, model_storage, resource, model=blob["model"])
