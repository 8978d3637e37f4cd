"""Helpers the tests share: paths, markers for optional system packages, real NNI managers,
a throw-away sshd. Fixtures live in tests/conftest.py; everything importable lives here."""
