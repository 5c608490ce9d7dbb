"""The credential checks as an L7 inspection: provider keys an agent sends itself, found
before the policy decides.

``KeyInspection.look`` reads the request's carriers (``gatewayd.credentials.detection``):
each provider key there adds its DLP class to the findings (``dlp_classes``, what the
policy's ``l7: {dlp_classes: [...]}`` condition reads, so a rule denies or alerts on it)
and the record says which class, in which carrier, how long (``credentials``: never the
key). Placeholders seen are recorded by id; whether the agent may use them is the
``Injector``'s call, once the request's identity is settled.

This adapter imports the L7 engine's inspection protocol, which imports the store; the
package's ``__init__`` does not import it, so that the store's migrations can import the
package. Pure: headers in, findings out.
"""

from __future__ import annotations

from collections.abc import Collection

from gatewayd.credentials.carriers import AUTH_HEADERS
from gatewayd.credentials.detection import sight
from gatewayd.credentials.model import shown
from gatewayd.l7.inspection import NOTHING, Findings, Headers
from gatewayd.l7.target import Target


class KeyInspection:
    """The inspection that reports provider keys in a request's auth headers and query."""

    name = "credentials"

    def __init__(self, carriers: Collection[str] = AUTH_HEADERS) -> None:
        self.carriers = frozenset(carriers)

    def look(self, method: str, target: Target, headers: Headers, body: bytes,
             whole: bool) -> Findings:
        seen = sight(headers, target.upstream, self.carriers)
        if not seen:
            return NOTHING
        record: dict[str, object] = {}
        if seen.keys:
            record["provider_keys"] = [s.as_dict() for s in seen.keys]
        if seen.placeholders:
            record["placeholders"] = [shown(pid) for pid in seen.placeholders]
        if seen.malformed_placeholders:
            record["malformed_placeholders"] = seen.malformed_placeholders
        return Findings(dlp_classes=seen.dlp_classes, record={"credentials": record})
