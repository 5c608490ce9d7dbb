"""Google's Gemini API (``generativelanguage.googleapis.com``) and Gemini on Vertex AI:
``generateContent``, ``streamGenerateContent``, ``countTokens``, ``embedContent`` and
``batchEmbedContents``. The model is in the URL (``models/<model>:<method>``).

Google's JSON accepts field names in camel case or snake case (``generationConfig`` or
``generation_config``); requests are read in both. Answers are ``GenerateContentResponse``
objects: one, or a stream of them (SSE with ``alt=sse``, else a JSON array written element
by element), each with ``usageMetadata`` so far — the last one's is the answer's usage.
"""

from __future__ import annotations

from gatewayd.ai.arguments import call_from_value
from gatewayd.ai.parsed import JsonObject, as_list, as_object, dumps, field
from gatewayd.ai.reading import AnswerReader, Reading, Tally
from gatewayd.ai.usage import from_gemini

# Tools other than function declarations: Google's own, named by their key.
BUILTIN_TOOLS = ("googleSearch", "google_search", "googleSearchRetrieval",
                 "google_search_retrieval", "codeExecution", "code_execution", "urlContext",
                 "url_context", "googleMaps", "google_maps", "fileSearch", "file_search",
                 "computerUse", "computer_use", "retrieval", "enterpriseWebSearch",
                 "enterprise_web_search")


def _parts(value: object, r: Reading) -> None:
    for part in r.some(value):
        p = as_object(part)
        if p is None:
            continue
        r.text(p.get("text"))
        call = as_object(field(p, "functionCall", "function_call"))
        if call is not None:
            r.call_value(call.get("name"), call.get("args"))
        answer = as_object(field(p, "functionResponse", "function_response"))
        if answer is not None:
            r.text(dumps(answer.get("response")))
        code = as_object(field(p, "executableCode", "executable_code"))
        if code is not None:
            r.text(code.get("code"))
        result = as_object(field(p, "codeExecutionResult", "code_execution_result"))
        if result is not None:
            r.text(result.get("output"))
        if field(p, "inlineData", "inline_data") is not None or \
                field(p, "fileData", "file_data") is not None:
            r.attachments += 1


def _content(value: object, r: Reading) -> None:
    c = as_object(value)
    if c is not None:
        _parts(c.get("parts"), r)


def read_generate(body: JsonObject, r: Reading) -> None:
    for content in r.walk(body.get("contents"), "contents"):
        if as_object(content) is None:
            r.refuse("a content is not an object")
            continue
        r.messages += 1
        _content(content, r)
    _content(field(body, "systemInstruction", "system_instruction"), r)
    for tool in r.some(body.get("tools")):
        t = as_object(tool)
        if t is None:
            continue
        for declaration in r.some(field(t, "functionDeclarations", "function_declarations")):
            d = as_object(declaration) or {}
            r.declare(d.get("name"))
            r.text(d.get("name"))
            r.text(d.get("description"))
            for key in ("parameters", "parametersJsonSchema", "parameters_json_schema"):
                if d.get(key) is not None:
                    r.text(dumps(d[key]))
        for key in BUILTIN_TOOLS:
            if key in t:
                r.declare(key)
    config = as_object(field(body, "generationConfig", "generation_config")) or {}
    r.set_max_output(field(config, "maxOutputTokens", "max_output_tokens"))


def read_count_tokens(body: JsonObject, r: Reading) -> None:
    inner = as_object(field(body, "generateContentRequest", "generate_content_request"))
    read_generate(inner if inner is not None else body, r)


def read_embed(body: JsonObject, r: Reading) -> None:
    requests = body.get("requests")
    if requests is None:
        r.messages += 1
        _content(body.get("content"), r)
        return
    for request in r.walk(requests, "requests"):
        r.messages += 1
        _content((as_object(request) or {}).get("content"), r)


class GeminiAnswer(AnswerReader):
    """``GenerateContentResponse`` objects, whole or streamed (and error objects)."""

    head_keys = ("modelVersion",)
    tail_keys = ("usageMetadata",)

    def __init__(self) -> None:
        self._calls = 0

    def body(self, obj: object, t: Tally) -> None:
        for element in obj if isinstance(obj, list) else [obj]:
            self.event(None, element, t)
        t.complete = True

    def event(self, name: str | None, obj: object, t: Tally) -> None:
        chunk = as_object(obj)
        if chunk is None:
            return
        t.set_model(chunk.get("modelVersion"))
        usage = from_gemini(chunk.get("usageMetadata"))
        if usage is not None:
            t.usage = usage
        if chunk.get("error") is not None:
            t.set_error(chunk.get("error"))
        for candidate in as_list(chunk.get("candidates"))[:t.bounds.max_items]:
            c = as_object(candidate) or {}
            if c.get("finishReason") is not None:
                t.set_finish(c.get("finishReason"))
                t.complete = True
            content = as_object(c.get("content")) or {}
            for part in as_list(content.get("parts"))[:t.bounds.max_items]:
                p = as_object(part) or {}
                t.output.add(p.get("text"))
                call = as_object(p.get("functionCall"))
                if call is not None and isinstance(call.get("name"), str):
                    self._calls += 1
                    t.calls.whole(("call", self._calls), call_from_value(
                        call["name"], call.get("args"), t.bounds))
                    t.output.add(dumps(call.get("args")))
