"""Fixtures for the DLP tests: the shipped scanner (compiled once) and fake secrets.

Secret-shaped strings are assembled at run time from parts, never written whole in the
source, so that secret scanners reading this repository do not flag the tests.
"""

from __future__ import annotations

import random

import pytest

from gatewayd.dlp import Scanner

from .corpus import github_token

AWS_KEY_ID = "AKIA" + "FAKEEXAMPLE23456"
AWS_SECRET = "Fake" + "SecretKey0123456789abcdefGHIJKLmnopq"  # 40 characters
STRIPE_KEY = "sk_" + "test_" + "FAKE0a1B2c3D4e5F6g7H8i9J"
GITHUB_TOKEN = github_token(random.Random(7))


@pytest.fixture(scope="session")
def scanner() -> Scanner:
    return Scanner.from_files()
