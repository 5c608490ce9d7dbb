"""The quota stage of the L7 pipeline: budgets reserved before a request goes upstream,
reconciled with what it used once its answer ended (``docs/quota.md``).

Between the policy's decision and forwarding, ``estimate`` says what a request is expected
to use: one request, the body bytes it sends, a new connection (the first request of a
client connection) and, for an AI call (``gatewayd.l7.ai_stage``), its prompt token
estimate and the completion it may ask for (its ``max_tokens``, else
``quota.output_estimate_tokens``), priced by the model. ``QuotaEngine.reserve`` checks and
holds that on every quota that applies. ``refusal_for`` is what the client gets when a
quota refuses: ``429`` with ``Retry-After`` when a retry can succeed (``quota-exceeded``,
``throttled``), ``503`` when the backend is down and the gateway fails hard
(``quota-unavailable``). Once the answer ended, ``actual`` is what the request used: the
usage the provider reported (a stream that ran past its estimate counts in full), else
the estimates; a request that never reached the upstream releases its holds instead.

Pure: values in, values out; the connection calls the engine.
"""

from __future__ import annotations

from gatewayd.l7.ai_stage import ai_of
from gatewayd.l7.exchange import Refusal
from gatewayd.l7.inspection import Findings
from gatewayd.policy import Decision
from gatewayd.quota import Consumption, QuotaDecision


def estimate(found: Findings, body_bytes: int, new_connection: bool,
             output_estimate_tokens: int) -> Consumption:
    """What a request is expected to use, before it goes upstream."""
    ai = ai_of(found)
    if ai is None:
        return Consumption(bytes_out=body_bytes, connections=int(new_connection))
    request, _ = ai
    return Consumption(
        input_tokens=request.prompt_tokens_estimate,
        output_tokens=request.max_output_tokens or output_estimate_tokens,
        bytes_out=body_bytes,
        connections=int(new_connection),
        model=request.model,
    )


def actual(found: Findings, estimated: Consumption, bytes_out: int) -> Consumption:
    """What a request used, once its answer ended (or broke off)."""
    ai = ai_of(found)
    if ai is None:
        return Consumption(bytes_out=bytes_out, connections=estimated.connections)
    request, answer = ai
    usage = answer.usage if answer is not None else None
    if usage is not None:
        input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
    else:
        input_tokens = request.prompt_tokens_estimate
        output_tokens = (answer.output_tokens if answer is not None
                         else estimated.output_tokens)
    return Consumption(input_tokens=input_tokens, output_tokens=output_tokens,
                       bytes_out=bytes_out, connections=estimated.connections,
                       model=request.model)


def refusal_for(decision: QuotaDecision, policy: Decision | None) -> Refusal:
    """The answer a refusing quota decision gives (kind and Retry-After included)."""
    status = decision.status or 429
    kind = decision.kind or ("quota-unavailable" if status == 503 else "quota-exceeded")
    return Refusal(status, decision.reason or "over a quota", kind, policy,
                   headers=decision.headers(), kind=kind)
