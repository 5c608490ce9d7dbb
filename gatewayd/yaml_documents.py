"""The YAML files operators write documents in (``Policy``, ``Quota``): each file's
documents decoded, with errors that name the file, the line and the document.

Pure: text in, values out. Each kind validates its own documents (``gatewayd.policy``,
``gatewayd.quota``); this is what they share.
"""

from __future__ import annotations

from typing import Any

import yaml

from gatewayd.errors import PolicyError

MAX_DOCUMENTS_PER_FILE = 1000


def load_documents(text: str | bytes, source: str) -> list[Any]:
    """Every document of one YAML file, decoded (``None`` for an empty one);
    ``PolicyError`` naming the line for YAML that does not parse, or for too many
    documents."""
    try:
        raws = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PolicyError(f"{source}:{where} not valid YAML: {problem}") from None
    if len(raws) > MAX_DOCUMENTS_PER_FILE:
        raise PolicyError(f"{source}: more than {MAX_DOCUMENTS_PER_FILE} documents")
    return raws


def document_where(source: str, index: int, raw: Any, noun: str) -> str:
    """How an error names a document: ``file: document 2 (policy ai)``."""
    name = None
    if isinstance(raw, dict):
        meta = raw.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("id"), str):
            name = meta["id"]
    return f"{source}: document {index + 1}" + (f" ({noun} {name})" if name else "")
