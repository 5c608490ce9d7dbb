"""Amazon Bedrock Runtime: Converse and ConverseStream (one body shape for every model),
InvokeModel and InvokeModelWithResponseStream (each model family's own body).

Requests: ``read_converse``; ``read_invoke`` recognizes the model-native bodies by shape —
Anthropic's Messages (``anthropic_version``), Amazon Nova's (``schemaVersion`` or
Converse-like messages), OpenAI-style chat (the gpt-oss models), a plain ``prompt``
(Llama, Mistral, DeepSeek...), Titan's ``inputText`` and Cohere's ``texts``/``message``.

Answers: ``ConverseAnswer`` — a Converse body (``usage``), or ConverseStream's events
(``contentBlockStart``/``Delta``, ``messageStop``, and ``metadata`` with the usage).
``InvokeAnswer`` — the model's own body, with InvokeModel's
``X-Amzn-Bedrock-Input-Token-Count``/``-Output-Token-Count`` headers as its usage; or
``chunk`` events whose ``bytes`` (base64) hold the model's own streamed JSON, the last
with ``amazon-bedrock-invocationMetrics`` (token counts for every model). Both streams are
AWS event-stream framed (``eventstream``).
"""

from __future__ import annotations

import base64
import binascii

import orjson

from gatewayd.ai import anthropic, openai
from gatewayd.ai.arguments import call_from_value
from gatewayd.ai.parsed import JsonObject, as_count, as_index, as_list, as_object, dumps
from gatewayd.ai.reading import AnswerReader, Reading, Tally
from gatewayd.ai.usage import Usage, from_bedrock, from_bedrock_metrics, from_counts
from gatewayd.errors import ParseError

METRICS = "amazon-bedrock-invocationMetrics"


def _blocks(value: object, r: Reading) -> None:
    for block in r.some(value):
        b = as_object(block)
        if b is None:
            continue
        r.text(b.get("text"))
        use = as_object(b.get("toolUse"))
        if use is not None:
            r.call_value(use.get("name"), use.get("input"))
        result = as_object(b.get("toolResult"))
        if result is not None:
            for part in r.some(result.get("content")):
                p = as_object(part) or {}
                r.text(p.get("text"))
                if p.get("json") is not None:
                    r.text(dumps(p["json"]))
        reasoning = as_object(b.get("reasoningContent")) or {}
        r.text((as_object(reasoning.get("reasoningText")) or {}).get("text"))
        if any(key in b for key in ("image", "document", "video")):
            r.attachments += 1


def read_converse(body: JsonObject, r: Reading) -> None:
    for m in r.messages_in(body.get("messages")):
        _blocks(m.get("content"), r)
    _blocks(body.get("system"), r)
    config = as_object(body.get("inferenceConfig")) or {}
    r.set_max_output(config.get("maxTokens"), config.get("max_new_tokens"))
    tools = as_object(body.get("toolConfig")) or {}
    for tool in r.some(tools.get("tools")):
        spec = as_object((as_object(tool) or {}).get("toolSpec"))
        if spec is None:
            continue
        r.declare(spec.get("name"))
        r.text(spec.get("name"))
        r.text(spec.get("description"))
        schema = as_object(spec.get("inputSchema")) or {}
        if schema.get("json") is not None:
            r.text(dumps(schema["json"]))


def read_invoke(body: JsonObject, r: Reading) -> None:
    """A model-native InvokeModel body, by its shape (the model is in the URL)."""
    if "anthropic_version" in body:
        anthropic.read_messages(body, r)
    elif "schemaVersion" in body or _converse_like(body.get("messages")):
        read_converse(body, r)
    elif isinstance(body.get("messages"), list):
        openai.read_chat(body, r)
    elif isinstance(body.get("prompt"), str):
        r.text(body.get("prompt"))
        r.messages += 1
        r.set_max_output(body.get("max_gen_len"), body.get("max_tokens"))
    elif isinstance(body.get("inputText"), str):
        r.text(body.get("inputText"))
        r.messages += 1
        config = as_object(body.get("textGenerationConfig")) or {}
        r.set_max_output(config.get("maxTokenCount"))
    elif isinstance(body.get("texts"), list):
        for text in r.walk(body.get("texts"), "texts"):
            r.text(text)
    elif isinstance(body.get("message"), str):
        r.text(body.get("message"))
        r.messages += 1
        for turn in r.some(body.get("chat_history")):
            r.text((as_object(turn) or {}).get("message"))
        r.set_max_output(body.get("max_tokens"))
    else:
        r.refuse("not a model body the analyzer knows")


def _converse_like(messages: object) -> bool:
    """Messages whose content is a list of untyped blocks (``{"text": ...}``)."""
    for message in as_list(messages)[:1]:
        blocks = as_list((as_object(message) or {}).get("content"))
        return bool(blocks) and all(isinstance(b, dict) and "type" not in b
                                    for b in blocks[:4])
    return False


class ConverseAnswer(AnswerReader):
    """Converse bodies and ConverseStream events (also Nova's InvokeModel answers)."""

    def body(self, obj: object, t: Tally) -> None:
        b = as_object(obj)
        if b is None:
            return
        usage = from_bedrock(b.get("usage"))
        if usage is not None:
            t.usage = usage
        t.set_finish(b.get("stopReason"))
        output = as_object(b.get("output")) or {}
        message = as_object(output.get("message")) or {}
        for n, block in enumerate(as_list(message.get("content"))[:t.bounds.max_items]):
            c = as_object(block) or {}
            t.output.add(c.get("text"))
            use = as_object(c.get("toolUse"))
            if use is not None and isinstance(use.get("name"), str):
                t.calls.whole(("block", n), call_from_value(use["name"], use.get("input"),
                                                            t.bounds))
        t.complete = True

    def event(self, name: str | None, obj: object, t: Tally) -> None:
        e = as_object(obj)
        if e is None:
            return
        key = ("block", as_index(e.get("contentBlockIndex")))
        if name == "contentBlockStart":
            start = as_object(e.get("start")) or {}
            use = as_object(start.get("toolUse")) or {}
            if isinstance(use.get("name"), str):
                t.calls.name(key, use["name"])
        elif name == "contentBlockDelta":
            delta = as_object(e.get("delta")) or {}
            t.output.add(delta.get("text"))
            use = as_object(delta.get("toolUse")) or {}
            if isinstance(use.get("input"), str):
                t.calls.fragment(key, use["input"])
                t.output.add(use["input"])
            reasoning = as_object(delta.get("reasoningContent")) or {}
            t.output.add(reasoning.get("text"))
        elif name == "messageStop":
            t.set_finish(e.get("stopReason"))
        elif name == "metadata":
            usage = from_bedrock(e.get("usage"))
            if usage is not None:
                t.usage = usage
            t.complete = True


class InvokeAnswer(AnswerReader):
    """InvokeModel and InvokeModelWithResponseStream answers, for any model family."""

    def __init__(self, header_usage: Usage | None) -> None:
        self._header_usage = header_usage
        self._metrics: Usage | None = None
        self._native: Usage | None = None
        self._anthropic = anthropic.MessagesAnswer()
        self._converse = ConverseAnswer()
        self._chat = openai.ChatAnswer()

    def body(self, obj: object, t: Tally) -> None:
        b = as_object(obj)
        if b is None:
            return
        if b.get("type") == "message":
            self._anthropic.body(b, t)
        elif isinstance(b.get("output"), dict):
            self._converse.body(b, t)
        elif isinstance(b.get("choices"), list):
            self._chat.body(b, t)
        else:
            self._other(b, t)
        t.complete = True

    def event(self, name: str | None, obj: object, t: Tally) -> None:
        e = as_object(obj)
        if name != "chunk" or e is None or not isinstance(e.get("bytes"), str):
            return
        try:
            native = orjson.loads(base64.b64decode(e["bytes"], validate=True))
        except (binascii.Error, ValueError):
            raise ParseError("a Bedrock chunk's bytes are not base64 JSON") from None
        n = as_object(native)
        if n is None:
            return
        metrics = from_bedrock_metrics(n.get(METRICS))
        if metrics is not None:
            self._metrics = metrics
            t.complete = True
        kind = n.get("type")
        if isinstance(kind, str) and (kind.startswith(("message_", "content_block_"))
                                      or kind in ("error", "ping")):
            self._anthropic.event(None, n, t)
        elif isinstance(n.get("choices"), list):
            self._chat.event(None, n, t)
        elif len(keys := [k for k in n if k != METRICS]) == 1 and \
                isinstance(n[keys[0]], dict):
            self._converse.event(keys[0], n[keys[0]], t)
        else:
            self._other(n, t)

    def _other(self, b: JsonObject, t: Tally) -> None:
        """Llama, Titan, Mistral, Cohere and the like: text and counts where given."""
        usage = from_counts(b.get("prompt_token_count"), b.get("generation_token_count"))
        if usage is not None:
            self._native = usage
        t.output.add(b.get("generation"))
        t.output.add(b.get("outputText"))
        t.output.add(b.get("text"))
        t.set_finish(b.get("stop_reason"))
        results = as_list(b.get("results"))[:t.bounds.max_items]
        outputs = as_list(b.get("outputs"))[:t.bounds.max_items]
        generations = as_list(b.get("generations"))[:t.bounds.max_items]
        made = 0
        for item in results + outputs + generations:
            i = as_object(item) or {}
            t.output.add(i.get("outputText"))
            t.output.add(i.get("text"))
            made += as_count(i.get("tokenCount")) or 0
            t.set_finish(i.get("completionReason") or i.get("stop_reason")
                         or i.get("finish_reason"))
        titan = from_counts(b.get("inputTextTokenCount"), made if results else None)
        if titan is not None:
            self._native = titan

    def finish(self, t: Tally) -> None:
        self._anthropic.finish(t)
        # Bedrock's own counts (its billing figures) over the model's.
        for usage in (self._native, self._header_usage, self._metrics):
            if usage is not None:
                t.usage = usage
