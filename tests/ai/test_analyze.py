"""Requests: every provider's request recognized by host, path and body, with the fields
policy and quotas read; what is not AI traffic; and what could not be read, classified."""

from __future__ import annotations

import gzip
import json

import pytest

from gatewayd.ai import AiRequest, Analyzer, Api, Bounds, Estimate, Provider, Status
from tests.ai.corpus import BEDROCK, CLAUDE_ON_BEDROCK, JSON, raw


def ask(analyzer: Analyzer, host: str, path: str, body: bytes | str | object,
        method: str = "POST", headers: list[tuple[bytes, bytes]] | None = None,
        complete: bool = True) -> AiRequest | None:
    if isinstance(body, str):
        body = raw(body)
    elif not isinstance(body, bytes):
        body = json.dumps(body).encode()
    return analyzer.request(method, host, path, headers if headers is not None else JSON,
                            body, complete=complete)


def must(request: AiRequest | None) -> AiRequest:
    assert request is not None
    return request


def test_openai_chat_completions(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "api.openai.com", "/v1/chat/completions",
                 "openai_chat_request.json"))
    assert (r.provider, r.api, r.status) == (Provider.OPENAI, Api.CHAT_COMPLETIONS, Status.OK)
    assert r.model == "gpt-4o-2024-08-06"
    assert r.stream and r.stream_usage is True
    assert r.max_output_tokens == 512
    assert r.tools_declared == ("get_weather", "search_museums")
    assert [(c.name, c.arguments) for c in r.tool_calls] == \
        [("get_weather", "{location:str(13),unit:str(7)}")]
    assert r.tools_called == ("get_weather",)
    assert (r.messages, r.attachments) == (5, 1)
    assert r.estimate is Estimate.EXACT
    # About 90 tokens of text and schemas, 18 of message framing, one image (765).
    assert 800 <= r.prompt_tokens_estimate <= 1000


def test_openai_responses(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "api.openai.com", "/v1/responses", "openai_responses_request.json"))
    assert (r.provider, r.api, r.status) == (Provider.OPENAI, Api.RESPONSES, Status.OK)
    assert (r.model, r.stream, r.max_output_tokens) == ("o4-mini", True, 2048)
    assert r.tools_declared == ("list_files", "read_file", "web_search_preview")
    assert [(c.name, c.arguments) for c in r.tool_calls] == \
        [("list_files", "{path:str(1),recursive:bool}")]
    assert r.stream_usage is None
    assert r.prompt_tokens_estimate > 50


def test_openai_embeddings(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "api.openai.com", "/v1/embeddings", "openai_embeddings_request.json"))
    assert (r.api, r.model, r.stream) == (Api.EMBEDDINGS, "text-embedding-3-small", False)
    assert 15 <= r.prompt_tokens_estimate <= 25


def test_embeddings_of_token_ids_count_them_as_they_are(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "api.openai.com", "/v1/embeddings",
                 {"model": "text-embedding-3-small", "input": [[1, 2, 3], [4, 5]]}))
    assert r.prompt_tokens_estimate == 5


def test_azure_openai_names_the_deployment_as_model(analyzer: Analyzer) -> None:
    """Azure's URL names the deployment; its body has no model, which is its normal shape."""
    r = must(ask(analyzer, "contoso-eu.openai.azure.com",
                 "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21",
                 "azure_chat_request.json"))
    assert (r.provider, r.api, r.status) == (Provider.AZURE_OPENAI, Api.CHAT_COMPLETIONS,
                                             Status.OK)
    assert (r.deployment, r.model, r.max_output_tokens) == ("gpt4o-prod", "gpt4o-prod", 200)
    with_model: dict[str, object] = {**json.loads(raw("azure_chat_request.json")),
                                     "model": "gpt-4o"}
    r = must(ask(analyzer, "contoso-eu.openai.azure.com",
                 "/openai/deployments/gpt4o-prod/chat/completions", with_model))
    assert (r.deployment, r.model) == ("gpt4o-prod", "gpt-4o")


def test_anthropic_messages(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "api.anthropic.com", "/v1/messages",
                 "anthropic_messages_request.json"))
    assert (r.provider, r.api, r.status) == (Provider.ANTHROPIC, Api.MESSAGES, Status.OK)
    assert (r.model, r.stream, r.max_output_tokens) == ("claude-sonnet-4-20250514", True, 1024)
    assert r.tools_declared == ("run_shell", "web_search")
    assert [(c.name, c.arguments) for c in r.tool_calls] == \
        [("run_shell", "{command:str(7),timeout_s:int}")]
    assert (r.messages, r.attachments) == (3, 1)
    assert r.prompt_tokens_estimate > 1600  # the image counts 1600 for Claude


def test_gemini_generate_content(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "generativelanguage.googleapis.com",
                 "/v1beta/models/gemini-2.5-flash:generateContent",
                 "gemini_generate_request.json"))
    assert (r.provider, r.api, r.status) == (Provider.GEMINI, Api.GENERATE_CONTENT, Status.OK)
    assert (r.model, r.stream, r.max_output_tokens) == ("gemini-2.5-flash", False, 800)
    assert r.tools_declared == ("create_event", "list_events", "googleSearch")
    assert [c.name for c in r.tool_calls] == ["create_event"]
    assert r.tool_calls[0].arguments == "{attendee:str(17),start:str(19),duration_minutes:int}"
    assert "alice" not in repr(r)


@pytest.mark.parametrize("query", ["?alt=sse", "", "?alt=sse&key=AIzaSyD-secret"])
def test_gemini_stream_generate_content(analyzer: Analyzer, query: str) -> None:
    r = must(ask(analyzer, "generativelanguage.googleapis.com",
                 "/v1beta/models/gemini-2.5-pro:streamGenerateContent" + query,
                 "gemini_generate_request.json"))
    assert (r.api, r.model, r.stream) == (Api.GENERATE_CONTENT, "gemini-2.5-pro", True)
    assert "AIza" not in repr(r)


def test_gemini_reads_snake_case_fields(analyzer: Analyzer) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "system_instruction": {"parts": [{"text": "be brief"}]},
            "tools": [{"function_declarations": [{"name": "lookup"}]}],
            "generation_config": {"max_output_tokens": 64}}
    r = must(ask(analyzer, "generativelanguage.googleapis.com",
                 "/v1/models/gemini-2.0-flash:generateContent", body))
    assert (r.tools_declared, r.max_output_tokens) == (("lookup",), 64)


def test_vertex_ai_gemini_and_claude(analyzer: Analyzer) -> None:
    project = "/v1/projects/acme/locations/europe-west4/publishers/"
    gemini = must(ask(analyzer, "europe-west4-aiplatform.googleapis.com",
                      project + "google/models/gemini-2.5-flash:streamGenerateContent",
                      "gemini_generate_request.json"))
    assert (gemini.provider, gemini.api, gemini.model, gemini.stream, gemini.region) == \
        (Provider.VERTEX_AI, Api.GENERATE_CONTENT, "gemini-2.5-flash", True, "europe-west4")
    body = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 100,
            "messages": [{"role": "user", "content": "hello"}]}
    claude = must(ask(analyzer, "europe-west4-aiplatform.googleapis.com",
                      project + "anthropic/models/claude-sonnet-4@20250514:streamRawPredict",
                      body))
    assert (claude.api, claude.model, claude.stream, claude.status) == \
        (Api.MESSAGES, "claude-sonnet-4@20250514", True, Status.OK)


@pytest.mark.parametrize(("operation", "api", "stream"), [
    ("converse", Api.CONVERSE, False), ("converse-stream", Api.CONVERSE, True)])
def test_bedrock_converse(analyzer: Analyzer, operation: str, api: Api, stream: bool) -> None:
    r = must(ask(analyzer, BEDROCK, f"/model/{CLAUDE_ON_BEDROCK}/{operation}",
                 "bedrock_converse_request.json"))
    assert (r.provider, r.api, r.stream, r.status) == (Provider.BEDROCK, api, stream, Status.OK)
    assert r.model == "anthropic.claude-3-5-sonnet-20240620-v1:0"
    assert r.region == "us-east-1"
    assert r.max_output_tokens == 300
    assert r.tools_declared == ("top_song",)
    assert [(c.name, c.arguments) for c in r.tool_calls] == [("top_song", "{sign:str(4)}")]


@pytest.mark.parametrize(("operation", "stream"), [
    ("invoke", False), ("invoke-with-response-stream", True)])
def test_bedrock_invoke_model_anthropic(analyzer: Analyzer, operation: str,
                                        stream: bool) -> None:
    r = must(ask(analyzer, BEDROCK, f"/model/{CLAUDE_ON_BEDROCK}/{operation}",
                 "bedrock_invoke_anthropic_request.json"))
    assert (r.api, r.stream, r.status) == (Api.INVOKE_MODEL, stream, Status.OK)
    assert (r.model, r.max_output_tokens) == ("anthropic.claude-3-5-sonnet-20240620-v1:0", 400)


def test_bedrock_invoke_model_llama(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "bedrock-runtime-fips.us-gov-west-1.amazonaws.com",
                 "/model/meta.llama3-8b-instruct-v1:0/invoke",
                 "bedrock_invoke_llama_request.json"))
    assert (r.model, r.max_output_tokens, r.region) == \
        ("meta.llama3-8b-instruct-v1:0", 128, "us-gov-west-1")
    assert r.prompt_tokens_estimate > 10


def test_bedrock_invoke_model_of_an_unknown_family_is_unknown_shape(analyzer: Analyzer,
                                                                    ) -> None:
    r = must(ask(analyzer, BEDROCK, "/model/acme.model-v1/invoke", {"weird": True}))
    assert (r.status, r.model) == (Status.UNKNOWN_SHAPE, "acme.model-v1")


def test_ollama_native_chat(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "gpu-box.internal:11434", "/api/chat", "ollama_chat_request.json"))
    assert (r.provider, r.api, r.status) == (Provider.OLLAMA, Api.OLLAMA_CHAT, Status.OK)
    assert (r.model, r.stream, r.max_output_tokens) == ("llama3.2", True, 256)
    assert r.tools_declared == ("get_current_weather",)
    assert [c.name for c in r.tool_calls] == ["get_current_weather"]
    assert r.attachments == 1


def test_ollama_generate_without_streaming(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "localhost:11434", "/api/generate",
                 {"model": "qwen2.5:7b", "prompt": "Why is the sky blue?", "stream": False}))
    assert (r.api, r.model, r.stream) == (Api.OLLAMA_GENERATE, "qwen2.5:7b", False)


@pytest.mark.parametrize(("host", "path", "provider"), [
    ("10.0.3.7:8000", "/v1/chat/completions", Provider.OPENAI_COMPATIBLE),
    ("localhost:11434", "/v1/chat/completions", Provider.OPENAI_COMPATIBLE),
    ("openrouter.ai", "/api/v1/chat/completions", Provider.OPENROUTER),
    ("api.groq.com", "/openai/v1/chat/completions", Provider.GROQ),
    ("generativelanguage.googleapis.com", "/v1beta/openai/chat/completions",
     Provider.GEMINI),
])
def test_openai_compatible_servers(analyzer: Analyzer, host: str, path: str,
                                   provider: Provider) -> None:
    r = must(ask(analyzer, host, path, "openrouter_chat_request.json"))
    assert (r.provider, r.api, r.status) == (provider, Api.CHAT_COMPLETIONS, Status.OK)
    assert (r.model, r.stream, r.stream_usage) == ("anthropic/claude-3.5-sonnet", True, True)
    # The model's family decides the factor: Claude counts 1.2 cl100k tokens.
    assert r.prompt_tokens_estimate == must(ask(
        analyzer, "api.openai.com", "/v1/chat/completions",
        "openrouter_chat_request.json")).prompt_tokens_estimate


def test_mcp_tools_call(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "mcp.internal", "/mcp", "mcp_tools_call_request.json"))
    assert (r.provider, r.api, r.status) == (Provider.MCP, Api.MCP, Status.OK)
    assert (r.mcp_method, r.mcp_tool) == ("tools/call", "query_database")
    assert [(c.name, c.arguments) for c in r.tool_calls] == \
        [("query_database", "{sql:str(42),limit:int,dry_run:bool}")]
    assert "SELECT" not in json.dumps(r.as_dict())
    assert (r.prompt_tokens_estimate, r.estimate) == (0, Estimate.NONE)


def test_mcp_batch_lists_every_method_and_tool(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "tools.example.com", "/rpc", "mcp_batch_request.json"))
    assert r.mcp_methods == ("notifications/initialized", "tools/call", "tools/call")
    assert r.mcp_tools == ("read_file", "send_email")
    assert (r.mcp_method, r.mcp_tool) == ("notifications/initialized", "read_file")
    assert r.tools_called == ("read_file", "send_email")


def test_mcp_tools_list(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "mcp.internal", "/mcp", "mcp_tools_list_request.json"))
    assert (r.mcp_method, r.mcp_tool, r.mcp_tools) == ("tools/list", None, ())


def test_json_rpc_that_is_not_mcp_is_not_ai(analyzer: Analyzer) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}
    assert ask(analyzer, "mainnet.example.org", "/", body) is None
    mcp_headers = [*JSON, (b"Mcp-Session-Id", b"1868a90c-3e54")]
    assert must(ask(analyzer, "mcp.internal", "/mcp", body, headers=mcp_headers)).mcp_method == \
        "eth_blockNumber"


@pytest.mark.parametrize(("host", "path", "body"), [
    ("example.com", "/api/chat", {"message": "hello"}),
    ("example.com", "/v1/responses", {"status": "ok"}),
    ("example.com", "/v1/messages", [{"id": 1}]),
    ("example.com", "/upload", {"model": "x", "messages": []}),
    ("example.com", "/api/chat", b"not json"),
])
def test_lookalike_paths_on_unknown_hosts_are_not_ai(analyzer: Analyzer, host: str, path: str,
                                                     body: object) -> None:
    assert ask(analyzer, host, path, body) is None


def test_a_get_to_an_unknown_host_is_not_ai(analyzer: Analyzer) -> None:
    assert ask(analyzer, "example.com", "/v1/chat/completions", b"", method="GET") is None


def test_other_endpoints_of_a_provider_are_its_traffic(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "api.openai.com", "/v1/files", b"--boundary...", method="POST"))
    assert (r.provider, r.api, r.status) == (Provider.OPENAI, Api.OTHER, Status.OK)
    r = must(ask(analyzer, "api.anthropic.com", "/v1/models", b"", method="GET"))
    assert (r.provider, r.api) == (Provider.ANTHROPIC, Api.OTHER)


def test_malformed_body(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "api.openai.com", "/v1/chat/completions", b'{"model": "gpt-4o",'))
    assert (r.status, r.provider, r.model) == (Status.MALFORMED, Provider.OPENAI, None)


def test_a_chat_path_on_any_host_with_a_bad_body_is_classified(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "10.0.3.7:8000", "/v1/chat/completions", b"\xff\xfe"))
    assert (r.provider, r.status) == (Provider.OPENAI_COMPATIBLE, Status.MALFORMED)


@pytest.mark.parametrize("body", [
    {"model": "gpt-4o", "messages": "hello"},
    {"messages": [{"role": "user", "content": "hi"}]},
    {"model": 42, "messages": []},
    {"model": "m" * 300, "messages": []},
    [1, 2, 3],
])
def test_unknown_shapes(analyzer: Analyzer, body: object) -> None:
    r = must(ask(analyzer, "api.openai.com", "/v1/chat/completions", body))
    assert r.status is Status.UNKNOWN_SHAPE
    assert r.detail


def test_a_truncated_body_is_estimated_from_its_length(analyzer: Analyzer) -> None:
    body = json.dumps({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "word " * 100_000}]}).encode()
    headers = [*JSON, (b"content-length", str(len(body)).encode())]
    r = must(ask(analyzer, "api.openai.com", "/v1/chat/completions", body[:65536],
                 headers=headers, complete=False))
    assert (r.status, r.estimate, r.body_truncated) == (Status.TRUNCATED, Estimate.BYTES, True)
    assert r.prompt_tokens_estimate == -(-len(body) // 4)


def test_an_oversize_body_is_estimated_from_its_length() -> None:
    small = Analyzer(Bounds(max_parse_bytes=1000))
    body = json.dumps({"model": "claude-opus-4", "max_tokens": 10,
                       "messages": [{"role": "user", "content": "x" * 4000}]}).encode()
    r = must(ask(small, "api.anthropic.com", "/v1/messages", body))
    assert (r.status, r.estimate) == (Status.OVERSIZE, Estimate.BYTES)
    assert r.prompt_tokens_estimate == -(-len(body) * 12 // 40)  # Claude's factor 1.2


def test_a_gzip_body_is_read(analyzer: Analyzer) -> None:
    headers = [*JSON, (b"content-encoding", b"gzip")]
    r = must(ask(analyzer, "api.anthropic.com", "/v1/messages",
                 gzip.compress(raw("anthropic_messages_request.json")), headers=headers))
    assert (r.status, r.model) == (Status.OK, "claude-sonnet-4-20250514")


def test_a_body_in_an_unknown_encoding_is_unknown_shape(analyzer: Analyzer) -> None:
    headers = [*JSON, (b"content-encoding", b"zstd")]
    r = must(ask(analyzer, "api.openai.com", "/v1/chat/completions", b"(\xb5/\xfd",
                 headers=headers))
    assert (r.status, r.detail) == (Status.UNKNOWN_SHAPE, "content-encoding zstd")


def test_a_gzip_bomb_is_inflated_only_to_the_parse_bound() -> None:
    small = Analyzer(Bounds(max_parse_bytes=100_000))
    bomb = gzip.compress(b"[" + b"1," * 5_000_000 + b"1]")
    headers = [*JSON, (b"content-encoding", b"gzip")]
    r = must(ask(small, "api.openai.com", "/v1/chat/completions", bomb, headers=headers))
    assert r.status is Status.OVERSIZE


def test_many_messages_read_the_newest_and_scale() -> None:
    small = Analyzer(Bounds(max_items=100))
    message: dict[str, object] = {"role": "user", "content": "the same short sentence"}
    messages = [message] * 1000
    messages.append({"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
                     "function": {"name": "late_tool", "arguments": "{}"}}]})
    r = must(ask(small, "api.openai.com", "/v1/chat/completions",
                 {"model": "gpt-4o", "messages": messages}))
    assert r.estimate is Estimate.SAMPLED
    assert [c.name for c in r.tool_calls] == ["late_tool"]
    full = must(ask(Analyzer(), "api.openai.com", "/v1/chat/completions",
                    {"model": "gpt-4o", "messages": messages}))
    assert abs(r.prompt_tokens_estimate - full.prompt_tokens_estimate) \
        <= full.prompt_tokens_estimate * 0.05


def test_the_record_carries_no_payload_text(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "api.anthropic.com", "/v1/messages",
                 "anthropic_messages_request.json"))
    record = json.dumps(r.as_dict())
    assert "df -h" not in record and "disk" not in record
    assert json.loads(record)["tool_calls"][0]["name"] == "run_shell"


def test_deeply_nested_tool_results_are_read_to_a_bound(analyzer: Analyzer) -> None:
    block: object = {"type": "text", "text": "innermost"}
    for _ in range(400):
        block = {"type": "tool_result", "tool_use_id": "t", "content": [block]}
    body = {"model": "claude-opus-4", "max_tokens": 10,
            "messages": [{"role": "user", "content": [block]}]}
    r = must(ask(analyzer, "api.anthropic.com", "/v1/messages", body))
    assert r.status is Status.OK


def test_the_answer_of_an_endpoint_not_read_is_only_counted(analyzer: Analyzer) -> None:
    r = must(ask(analyzer, "api.openai.com", "/v1/files/file-abc/content", b"", method="GET"))
    meter = analyzer.response(r, 200, [(b"content-type", b"application/octet-stream")])
    for _ in range(100):
        meter.feed(b"\x00" * 65536)
    got = meter.close()
    assert (got.status, got.body_bytes, got.usage) == ("complete", 100 * 65536, None)
