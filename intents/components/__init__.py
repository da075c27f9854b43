"""Custom Rasa NLU components, loaded by the Rasa server (its own Python 3.10 environment)
with the repository root on PYTHONPATH, e.g.
``intents.components.tfidf_classifier.TfidfIntentClassifier``.

Import-light on purpose: nothing is imported here, so importing the package needs neither
Rasa nor scikit-learn (the product environment can import ``intents`` safely).
"""
