"""Real Python clients, run inside an agent namespace by the L7 tests: prints one JSON
object with what each client got. The trust store comes from the environment
(SSL_CERT_FILE / REQUESTS_CA_BUNDLE: the lab's trust bundle).

    python l7_sdk_probe.py openai BASE_URL [--proxy URL]
    python l7_sdk_probe.py budget BASE_URL   (chat calls until one is refused, at most 20)
    python l7_sdk_probe.py budget-anthropic BASE_URL   (the same with the Anthropic SDK)
    python l7_sdk_probe.py httpx URL [--proxy URL]
    python l7_sdk_probe.py requests URL [--proxy URL]
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time
from typing import Any

import anthropic
import httpx
import openai
import requests


def _openai(base_url: str, proxy: str | None) -> dict[str, Any]:
    client = openai.OpenAI(
        base_url=base_url, api_key="lab-key", max_retries=0, timeout=10,
        http_client=httpx.Client(proxy=proxy, verify=ssl.create_default_context(
            cafile=os.environ["SSL_CERT_FILE"])) if proxy else None,
    )
    messages = [{"role": "user", "content": "say hello to the gateway please"}]
    reply = client.chat.completions.create(model="lab-model", messages=messages)
    chunks: list[str] = []
    arrivals: list[float] = []
    usage = None
    stream = client.chat.completions.create(
        model="lab-model", messages=messages, stream=True,
        stream_options={"include_usage": True}, extra_query={"interval_ms": 50})
    for chunk in stream:
        arrivals.append(time.monotonic())
        if chunk.choices and chunk.choices[0].delta.content:
            chunks.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage.total_tokens
    denied: dict[str, Any] = {}
    try:
        client.get("/admin/keys", cast_to=object)
    except openai.APIStatusError as exc:
        denied = {"status": exc.status_code, "body": exc.response.json()}
    model_denied: dict[str, Any] = {}
    try:
        client.chat.completions.create(model="forbidden-model", messages=messages)
    except openai.APIStatusError as exc:
        model_denied = {"status": exc.status_code, "body": exc.response.json()}
    return {
        "content": reply.choices[0].message.content,
        "usage": reply.usage.total_tokens if reply.usage else None,
        "streamed": "".join(chunks),
        "stream_usage": usage,
        "stream_spread_s": arrivals[-1] - arrivals[0] if arrivals else 0.0,
        "stream_events": len(arrivals),
        "denied": denied,
        "model_denied": model_denied,
    }


def _budget(base_url: str, proxy: str | None) -> dict[str, Any]:
    """Chat calls, JSON and streamed in turn, until one is refused: what each reported
    using, and the refusal."""
    client = openai.OpenAI(base_url=base_url, api_key="lab-key", max_retries=0, timeout=10)
    messages = [{"role": "user", "content": "count my tokens against the budget please"}]
    used: list[int] = []
    for i in range(20):
        try:
            if i % 2:
                stream = client.chat.completions.create(
                    model="lab-model", messages=messages, max_tokens=20, stream=True,
                    stream_options={"include_usage": True})
                total = [c.usage.total_tokens for c in stream if c.usage is not None]
                used.append(total[-1])
            else:
                reply = client.chat.completions.create(model="lab-model", messages=messages,
                                                       max_tokens=20)
                assert reply.usage is not None
                used.append(reply.usage.total_tokens)
        except openai.APIStatusError as exc:
            return {"used": used, "refused": {
                "status": exc.status_code, "body": exc.response.json(),
                "retry_after": exc.response.headers.get("retry-after")}}
    return {"used": used, "refused": None}


def _budget_anthropic(base_url: str, proxy: str | None) -> dict[str, Any]:
    """As ``_budget``, with the official Anthropic SDK and the Messages API."""
    client = anthropic.Anthropic(base_url=base_url, api_key="lab-key", max_retries=0,
                                 timeout=10)
    messages: Any = [{"role": "user", "content": "count my tokens against the budget please"}]
    used: list[int] = []
    for i in range(20):
        try:
            if i % 2:
                with client.messages.stream(model="claude-lab", max_tokens=20,
                                            messages=messages) as stream:
                    final = stream.get_final_message()
                used.append(final.usage.input_tokens + final.usage.output_tokens)
            else:
                got = client.messages.create(model="claude-lab", max_tokens=20,
                                             messages=messages)
                used.append(got.usage.input_tokens + got.usage.output_tokens)
        except anthropic.APIStatusError as exc:
            return {"used": used, "refused": {
                "status": exc.status_code, "body": exc.response.json(),
                "retry_after": exc.response.headers.get("retry-after")}}
    return {"used": used, "refused": None}


def _httpx(url: str, proxy: str | None) -> dict[str, Any]:
    with httpx.Client(proxy=proxy, timeout=10) as client:
        first = client.get(url)
        second = client.post(url.rstrip("/") + "/echo", content=b"x" * 5000)
        return {"status": [first.status_code, second.status_code],
                "body": second.json(),
                "request_ids": [first.headers.get("x-clawgress-request-id"),
                                second.headers.get("x-clawgress-request-id")]}


def _requests(url: str, proxy: str | None) -> dict[str, Any]:
    proxies = {"http": proxy, "https": proxy} if proxy else None
    with requests.Session() as session:
        got = session.get(url, proxies=proxies, timeout=10)
        chunked = session.post(url.rstrip("/") + "/echo", proxies=proxies, timeout=10,
                               data=iter([b"a" * 1000, b"b" * 1000]))
        return {"status": [got.status_code, chunked.status_code], "body": chunked.text,
                "request_id": got.headers.get("x-clawgress-request-id")}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("client", choices=["openai", "budget", "budget-anthropic", "httpx",
                                           "requests"])
    parser.add_argument("url")
    parser.add_argument("--proxy")
    args = parser.parse_args()
    run = {"openai": _openai, "budget": _budget, "budget-anthropic": _budget_anthropic,
           "httpx": _httpx, "requests": _requests}[args.client]
    try:
        result = run(args.url, args.proxy)
    except Exception as exc:  # report, do not hide: the test asserts on it
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
