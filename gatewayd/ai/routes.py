"""Which AI API a request calls, from its method, host and path alone.

Hosted services are known by host: ``api.openai.com``, ``*.openai.azure.com``,
``api.anthropic.com``, ``generativelanguage.googleapis.com``, Vertex AI,
``bedrock-runtime.<region>.amazonaws.com``, OpenRouter and a few OpenAI-compatible
clouds. On those, the path says which API (and, for Gemini, Vertex AI and Bedrock, which
model; for Azure, which deployment), and a path the analyzer does not read is
``Api.OTHER``: still the provider's traffic, for policy to decide on.

Self-hosted servers (vLLM, llama.cpp, LiteLLM, Ollama) run on any host, so there the path
is the evidence: ``…/chat/completions`` is specific enough on its own, while the others
(``…/responses``, ``…/embeddings``, ``…/completions``, ``…/messages``, Ollama's
``/api/chat``…) count only when the body has the API's shape (``Route.by_shape``). MCP
has no path of its own: the analyzer recognizes it by its body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from gatewayd.ai.request import Api, Provider

KNOWN_HOSTS = {
    "api.openai.com": Provider.OPENAI,
    "api.anthropic.com": Provider.ANTHROPIC,
    "generativelanguage.googleapis.com": Provider.GEMINI,
    "aiplatform.googleapis.com": Provider.VERTEX_AI,
    "openrouter.ai": Provider.OPENROUTER,
    "api.mistral.ai": Provider.MISTRAL,
    "api.groq.com": Provider.GROQ,
    "api.together.xyz": Provider.TOGETHER,
    "api.together.ai": Provider.TOGETHER,
    "api.deepseek.com": Provider.DEEPSEEK,
    "api.x.ai": Provider.XAI,
    "api.fireworks.ai": Provider.FIREWORKS,
    "api.perplexity.ai": Provider.PERPLEXITY,
}
HOST_SUFFIXES = (
    (".openai.azure.com", Provider.AZURE_OPENAI),
    (".cognitiveservices.azure.com", Provider.AZURE_OPENAI),
    (".services.ai.azure.com", Provider.AZURE_OPENAI),
    ("-aiplatform.googleapis.com", Provider.VERTEX_AI),
)
_BEDROCK_HOST = re.compile(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]{1,32})\.amazonaws\.com")
_BEDROCK_PATH = re.compile(
    r"/model/([^/]{1,2048})/(invoke|invoke-with-response-stream|converse|converse-stream)")
# Gemini: /v1beta/models/<m>:<method>; Vertex AI: /v1/projects/<p>/locations/<l>/
# publishers/<publisher>/models/<m>:<method>.
_GOOGLE_PATH = re.compile(
    r"/v1[a-z0-9]*/(?:projects/[^/]+/locations/([^/]+)/)?(?:publishers/([^/]+)/)?"
    r"((?:tuned)?[mM]odels)/([^/:]{1,256}):([A-Za-z]{1,64})")
_AZURE_DEPLOYMENT = re.compile(r"/openai/deployments/([^/]{1,256})(/.*)")

_BEDROCK_APIS = {
    "invoke": (Api.INVOKE_MODEL, False),
    "invoke-with-response-stream": (Api.INVOKE_MODEL, True),
    "converse": (Api.CONVERSE, False),
    "converse-stream": (Api.CONVERSE, True),
}
_GOOGLE_APIS = {
    "generateContent": (Api.GENERATE_CONTENT, False),
    "streamGenerateContent": (Api.GENERATE_CONTENT, True),
    "countTokens": (Api.COUNT_TOKENS, False),
    "embedContent": (Api.EMBED_CONTENT, False),
    "batchEmbedContents": (Api.EMBED_CONTENT, False),
    "rawPredict": (Api.MESSAGES, False),
    "streamRawPredict": (Api.MESSAGES, True),
}
_OLLAMA_PATHS = {
    "/api/chat": Api.OLLAMA_CHAT,
    "/api/generate": Api.OLLAMA_GENERATE,
    "/api/embed": Api.OLLAMA_EMBED,
    "/api/embeddings": Api.OLLAMA_EMBED,
}
# Path endings, most specific first.
_SUFFIXES = (
    ("/chat/completions", Api.CHAT_COMPLETIONS),
    ("/completions", Api.COMPLETIONS),
    ("/responses", Api.RESPONSES),
    ("/embeddings", Api.EMBEDDINGS),
    ("/messages/count_tokens", Api.COUNT_TOKENS),
    ("/messages", Api.MESSAGES),
)


@dataclass(frozen=True, slots=True)
class Route:
    """An AI endpoint: provider, API, and what the URL says (model, streaming...).

    ``by_shape``: recognized by path on a host not known by name, so it is AI traffic
    only if the body has the API's shape.
    """

    provider: Provider
    api: Api
    stream: bool = False
    model: str | None = None
    deployment: str | None = None
    region: str | None = None
    by_shape: bool = False


def bare_host(host: str) -> str:
    """A host without port, trailing dot or brackets, in lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def provider_of(host: str) -> tuple[Provider | None, str | None]:
    """The provider a host belongs to (and the region its name gives), if known."""
    if host in KNOWN_HOSTS:
        return KNOWN_HOSTS[host], None
    for suffix, provider in HOST_SUFFIXES:
        if host.endswith(suffix):
            return provider, host[:-len(suffix)] if provider is Provider.VERTEX_AI else None
    bedrock = _BEDROCK_HOST.fullmatch(host)
    if bedrock is not None:
        return Provider.BEDROCK, bedrock.group(1)
    return None, None


def route_for(method: str, host: str, path: str) -> Route | None:
    """The AI endpoint a request goes to, or ``None`` when host and path do not say."""
    host = bare_host(host)
    path = path.split("?", 1)[0].split("#", 1)[0]
    provider, region = provider_of(host)
    if method.upper() != "POST":
        return Route(provider, Api.OTHER, region=region) if provider is not None else None
    if provider is Provider.BEDROCK:
        found = _BEDROCK_PATH.fullmatch(path)
        if found is None:
            return Route(provider, Api.OTHER, region=region)
        api, stream = _BEDROCK_APIS[found.group(2)]
        return Route(provider, api, stream, unquote(found.group(1)), region=region)
    if provider in (Provider.GEMINI, Provider.VERTEX_AI):
        found = _GOOGLE_PATH.fullmatch(path)
        if found is not None:
            api, stream = _GOOGLE_APIS.get(found.group(5), (Api.OTHER, False))
            model = unquote(found.group(4))
            if found.group(3) == "tunedModels":
                model = f"tunedModels/{model}"
            return Route(provider, api, stream, model, region=found.group(1) or region)
    deployment = None
    if provider is Provider.AZURE_OPENAI:
        found = _AZURE_DEPLOYMENT.fullmatch(path)
        if found is not None:
            deployment, path = unquote(found.group(1)), found.group(2)
    for suffix, api in _SUFFIXES:
        if path.endswith(suffix):
            if provider is not None:
                return Route(provider, api, deployment=deployment, region=region)
            guessed = Provider.ANTHROPIC_COMPATIBLE if api in (
                Api.MESSAGES, Api.COUNT_TOKENS) else Provider.OPENAI_COMPATIBLE
            return Route(guessed, api, by_shape=api is not Api.CHAT_COMPLETIONS)
    if path in _OLLAMA_PATHS:
        return Route(provider or Provider.OLLAMA, _OLLAMA_PATHS[path], by_shape=True)
    if provider is not None:
        return Route(provider, Api.OTHER, deployment=deployment, region=region)
    return None
