"""The one OpenAI-compatible client factory, shared by inference and questionnaire correction.

Why one: both talk to the same kind of endpoint (OpenAI, vLLM, llama.cpp) and must fail and
retry the same way. Retries are the client's own (`max_retries`): it retries connection
errors, timeouts, 408/409/429 and 5xx with capped exponential backoff plus jitter, and honours
the server's `Retry-After` / `retry-after-ms` headers (seconds or HTTP date). The API key is
read from the environment variable *named* in params, never from params; it is given to the
client only and never logged or stored.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from opinionbench.errors import ConfigError

if TYPE_CHECKING:
    import openai

NO_KEY = "none"  # local servers (llama.cpp, vLLM without --api-key) accept any key


def api_key(api_key_env: str | None, *, required: bool, where: str) -> str:
    """The key held by the variable `api_key_env`; a required one that is unset is one clear error."""
    key = os.environ.get(api_key_env, "") if api_key_env else ""
    if required and api_key_env and not key:
        raise ConfigError(f"{where}: environment variable {api_key_env} (api_key_env) is not set")
    return key or NO_KEY


def make_client(base_url: str, *, key: str, timeout: float, max_retries: int) -> openai.OpenAI:
    """An `openai.OpenAI` client for `base_url` with the shared retry policy (the client's own)."""
    import openai

    return openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=max_retries)
