"""The NLU side: the Rasa project (config, bilingual training data, answers), the HTTP client the
router uses, and the ops tools to train, evaluate and deploy models.

Import-light on purpose: the Rasa server imports `intents.components` from its own Python 3.10
environment, so nothing here may import product-only libraries at package import time.
"""
