"""The AI fixtures (``fixtures/``), how to frame them, and what each answer must read as."""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatewayd.ai import AiRequest, AiResponse, Analyzer, Usage

FIXTURES = Path(__file__).with_name("fixtures")
JSON = [(b"content-type", b"application/json")]
SSE = [(b"content-type", b"text/event-stream; charset=utf-8")]
EVENTSTREAM = [(b"content-type", b"application/vnd.amazon.eventstream")]
NDJSON = [(b"content-type", b"application/x-ndjson")]


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def load(name: str) -> Any:
    return json.loads(raw(name))


def eventstream_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message with string headers (test-side encoder)."""
    head = b"".join(bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v))
                    + v.encode() for k, v in headers.items())
    prelude = struct.pack(">II", 12 + len(head) + len(payload) + 4, len(head))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + head + payload
    return message + struct.pack(">I", zlib.crc32(message))


def eventstream(name: str) -> bytes:
    """A ``*.events.json`` fixture framed as Bedrock sends it."""
    return b"".join(
        eventstream_message({":event-type": kind, ":content-type": "application/json",
                             ":message-type": "event"},
                            json.dumps(payload, separators=(",", ":")).encode())
        for kind, payload in load(name))


@dataclass(frozen=True)
class Answer:
    """An answer fixture: the request it answers, how it arrives, what it must read as."""

    request: str
    host: str
    path: str
    answer: str
    headers: list[tuple[bytes, bytes]]
    usage: Usage | None
    calls: tuple[tuple[str, str], ...] = ()
    model: str | None = None

    def body(self) -> bytes:
        return eventstream(self.answer) if self.answer.endswith(".events.json") \
            else raw(self.answer)

    def ask(self, analyzer: Analyzer) -> AiRequest:
        request = analyzer.request("POST", self.host, self.path, JSON, raw(self.request))
        assert request is not None
        return request


def read_answer(analyzer: Analyzer, case: Answer, pieces: list[bytes] | None = None,
                status: int = 200) -> AiResponse:
    meter = analyzer.response(case.ask(analyzer), status, case.headers)
    for piece in pieces if pieces is not None else [case.body()]:
        meter.feed(piece)
    return meter.close()


OPENAI = ("api.openai.com", "/v1/chat/completions")
BEDROCK = "bedrock-runtime.us-east-1.amazonaws.com"
CLAUDE_ON_BEDROCK = "anthropic.claude-3-5-sonnet-20240620-v1%3A0"
GEMINI_PATH = "/v1beta/models/gemini-2.5-flash:"

ANSWERS = {
    "openai-chat": Answer("openai_chat_request.json", *OPENAI, "openai_chat_response.json",
                          JSON, Usage(1117, 46, 1024, None, 0),
                          (("search_museums", "{near:str(13)}"),), "gpt-4o-2024-08-06"),
    "openai-chat-stream": Answer("openai_chat_request.json", *OPENAI, "openai_chat_stream.sse",
                                 SSE, Usage(1117, 15, 1024, None, 0), (),
                                 "gpt-4o-2024-08-06"),
    "openai-chat-stream-no-usage": Answer(
        "openai_chat_request.json", *OPENAI, "openai_chat_stream_no_usage.sse", SSE, None,
        (("get_weather", "{location:str(13)}"),), "gpt-4o-2024-08-06"),
    "openai-responses": Answer(
        "openai_responses_request.json", "api.openai.com", "/v1/responses",
        "openai_responses_response.json", JSON, Usage(311, 150, 256, 0, 128),
        (("read_file", "{path:str(9)}"),), "o4-mini-2025-04-16"),
    "openai-responses-stream": Answer(
        "openai_responses_request.json", "api.openai.com", "/v1/responses",
        "openai_responses_stream.sse", SSE, Usage(311, 150, 256, 0, 128),
        (("read_file", "{path:str(9)}"),), "o4-mini-2025-04-16"),
    "openai-embeddings": Answer(
        "openai_embeddings_request.json", "api.openai.com", "/v1/embeddings",
        "openai_embeddings_response.json", JSON, Usage(17, 0), (), "text-embedding-3-small"),
    "anthropic": Answer(
        "anthropic_messages_request.json", "api.anthropic.com", "/v1/messages",
        "anthropic_message_response.json", JSON, Usage(2330, 72, 1800, 0),
        (("run_shell", "{command:str(37)}"),), "claude-sonnet-4-20250514"),
    "anthropic-stream": Answer(
        "anthropic_messages_request.json", "api.anthropic.com", "/v1/messages",
        "anthropic_stream.sse", SSE, Usage(1672, 89, 0, 1200),
        (("run_shell", "{command:str(15),timeout_s:int}"),), "claude-sonnet-4-20250514"),
    "gemini": Answer(
        "gemini_generate_request.json", "generativelanguage.googleapis.com",
        GEMINI_PATH + "generateContent", "gemini_response.json", JSON,
        Usage(143, 260, 100, None, 236), (), "gemini-2.5-flash"),
    "gemini-stream-sse": Answer(
        "gemini_generate_request.json", "generativelanguage.googleapis.com",
        GEMINI_PATH + "streamGenerateContent?alt=sse", "gemini_stream.sse", SSE,
        Usage(143, 260, 100, None, 236), (), "gemini-2.5-flash"),
    "gemini-stream-array": Answer(
        "gemini_generate_request.json", "generativelanguage.googleapis.com",
        GEMINI_PATH + "streamGenerateContent", "gemini_stream.json", JSON,
        Usage(143, 260, 100, None, 236), (), "gemini-2.5-flash"),
    "bedrock-converse": Answer(
        "bedrock_converse_request.json", BEDROCK, f"/model/{CLAUDE_ON_BEDROCK}/converse",
        "bedrock_converse_response.json", JSON, Usage(2460, 21, 2048, 0)),
    "bedrock-converse-stream": Answer(
        "bedrock_converse_request.json", BEDROCK, f"/model/{CLAUDE_ON_BEDROCK}/converse-stream",
        "bedrock_converse_stream.events.json", EVENTSTREAM, Usage(375, 68),
        (("top_song", "{sign:str(4)}"),)),
    "bedrock-invoke": Answer(
        "bedrock_invoke_anthropic_request.json", BEDROCK, f"/model/{CLAUDE_ON_BEDROCK}/invoke",
        "bedrock_invoke_anthropic_response.json",
        [*JSON, (b"X-Amzn-Bedrock-Input-Token-Count", b"31"),
         (b"X-Amzn-Bedrock-Output-Token-Count", b"13")], Usage(31, 13), (),
        "claude-3-5-sonnet-20240620"),
    "bedrock-invoke-stream": Answer(
        "bedrock_invoke_anthropic_request.json", BEDROCK,
        f"/model/{CLAUDE_ON_BEDROCK}/invoke-with-response-stream",
        "bedrock_invoke_stream.events.json", EVENTSTREAM, Usage(31, 13), (),
        "claude-3-5-sonnet-20240620"),
    "bedrock-invoke-llama": Answer(
        "bedrock_invoke_llama_request.json", BEDROCK, "/model/meta.llama3-8b-instruct-v1:0/invoke",
        "bedrock_invoke_llama_response.json", JSON, Usage(27, 22)),
    "ollama-stream": Answer("ollama_chat_request.json", "gpu-box.internal:11434", "/api/chat",
                            "ollama_chat_stream.ndjson", NDJSON, Usage(26, 282), (), "llama3.2"),
    "ollama": Answer("ollama_chat_request.json", "gpu-box.internal:11434", "/api/chat",
                     "ollama_chat_response.json", JSON, Usage(122, 33),
                     (("get_current_weather", "{location:str(5),format:str(7)}"),),
                     "llama3.2"),
    "mcp-tools-list": Answer("mcp_tools_list_request.json", "mcp.internal", "/mcp",
                             "mcp_tools_list_response.json", JSON, None),
    "mcp-tools-list-sse": Answer("mcp_tools_list_request.json", "mcp.internal", "/mcp",
                                 "mcp_tools_list_response.sse", SSE, None),
    "mcp-tools-call-sse": Answer("mcp_tools_call_request.json", "mcp.internal", "/mcp",
                                 "mcp_tools_call_response.sse", SSE, None),
    "vllm": Answer("vllm_chat_request.json", "10.0.3.7:8000", "/v1/chat/completions",
                   "vllm_chat_response.json", JSON, Usage(43, 8), (),
                   "meta-llama/Llama-3.1-8B-Instruct"),
}
STREAMED = ["openai-chat-stream", "openai-chat-stream-no-usage", "openai-responses-stream",
            "anthropic-stream", "gemini-stream-sse", "gemini-stream-array",
            "bedrock-converse-stream", "bedrock-invoke-stream", "ollama-stream",
            "mcp-tools-list-sse", "mcp-tools-call-sse"]
