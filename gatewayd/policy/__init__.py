"""The policy engine: documents → compiled plan → decisions.

Sans-IO. ``documents`` validates the YAML an operator writes (what a rule matches on is in
``selectors`` and ``l7_conditions``; ``when:`` conditions in ``condition``); ``compile``
turns documents into a ``Plan`` with indexes by identity, destination and port;
``Plan.evaluate`` returns a ``Decision`` for a ``Request``. ``reference`` is the naive
oracle the plan is tested against; ``explain`` makes a decision readable. Bundles (signed
archives of documents) are ``bundle``, ``manifest``, ``archive`` and ``signing``; which
bundle is active is ``activation``. Their thin IO is kept at the edges: bundle files in
``bundle_files``, key files in ``signing``, the store in ``activation``.
"""

from gatewayd.policy.compile import compile_plan
from gatewayd.policy.decision import Decision, Request
from gatewayd.policy.documents import (
    Action,
    EnforcementMode,
    PolicyDocument,
    SourcedDocument,
    parse_documents,
)
from gatewayd.policy.explain import Explanation, explain
from gatewayd.policy.guard import Guard
from gatewayd.policy.plan import Plan

__all__ = [
    "Action",
    "Decision",
    "EnforcementMode",
    "Explanation",
    "Guard",
    "Plan",
    "PolicyDocument",
    "Request",
    "SourcedDocument",
    "compile_plan",
    "explain",
    "parse_documents",
]
