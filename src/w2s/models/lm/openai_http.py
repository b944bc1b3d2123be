"""The `openai` backend: any OpenAI-compatible HTTP server (vLLM, llama.cpp, Ollama, OpenAI).

Base URL and model name come from the config, the API key from an environment variable
(sent as a bearer token, never logged). Requests run concurrently up to `concurrency`,
with timeouts and retries with exponential backoff on connection errors, 429 and 5xx;
other 4xx answers fail at once. Every failure is one `BackendError` line.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from w2s.cache import fingerprint
from w2s.errors import BackendError
from w2s.models.lm.base import Done, GenParams, LanguageModel, Message, render_plain

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAILanguageModel(LanguageModel):
    """A model served behind `/v1/chat/completions` (or `/v1/completions` if `chat=False`).

    `revision` names what is served (the server cannot tell), so that cached outputs of
    different weights behind the same name never mix.
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        concurrency: int = 4,
        chat: bool = True,
        revision: str = "",
        cache: bool = True,
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.shown_url = redact_url(self.base_url)  # for messages: never echo a password
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.concurrency = max(1, concurrency)
        self.chat = chat
        self.revision = revision
        self._client = None
        super().__init__(cache=cache)

    @property
    def key(self) -> str:
        return fingerprint("openai", self.base_url, self.model, self.revision, self.chat)

    @property
    def name(self) -> str:
        return f"{self.model}@{self.shown_url}"

    def _http(self):
        if self._client is None:
            import httpx

            headers = {"Content-Type": "application/json"}
            key = os.environ.get(self.api_key_env)
            if key:
                headers["Authorization"] = f"Bearer {key}"
            self._client = httpx.Client(
                base_url=self.base_url,
                headers=headers,
                timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                limits=httpx.Limits(max_connections=self.concurrency),
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON with retries; returns the decoded answer or raises `BackendError`."""
        import httpx

        where = f"{self.shown_url}{path}"
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                resp = self._http().post(path, json=body)
            except httpx.TimeoutException:
                last = f"no answer within {self.timeout:g} s"
                continue
            except httpx.TransportError as err:
                last = _reason(err)
                continue
            if resp.status_code < 400:
                try:
                    return resp.json()
                except ValueError:
                    raise BackendError(f"{where} answered with invalid JSON") from None
            detail = f"HTTP {resp.status_code}: {_server_message(resp)}"
            if resp.status_code in RETRY_STATUS:
                last = detail
                continue
            hint = f" (check ${self.api_key_env})" if resp.status_code in (401, 403) else ""
            raise BackendError(f"{where} rejected the request: {detail}{hint}")
        tries = self.max_retries + 1
        if last.startswith("HTTP"):
            raise BackendError(f"{where} failed after {tries} attempt(s): {last}")
        raise BackendError(
            f"cannot reach the OpenAI-compatible server at {self.shown_url} ({last}) after "
            f"{tries} attempt(s); is it running?"
        )

    def _map(
        self, fn: Callable[[Any], Any], items: list[Any], done: Done | None = None
    ) -> list[Any]:
        """`fn` over `items` on `concurrency` threads, in order; each result goes to
        `done` as soon as it arrives."""
        out: list[Any] = [None] * len(items)
        if len(items) <= 1 or self.concurrency == 1:
            for i, x in enumerate(items):
                out[i] = fn(x)
                if done is not None:
                    done(i, out[i])
            return out
        with ThreadPoolExecutor(self.concurrency) as pool:
            futures = {pool.submit(fn, x): i for i, x in enumerate(items)}
            try:
                for f in as_completed(futures):
                    out[futures[f]] = f.result()
                    if done is not None:
                        done(futures[f], out[futures[f]])
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        return out

    def _one(self, chat: list[Message], params: GenParams) -> list[str]:
        texts: list[str] = []
        attempt = 0
        while len(texts) < params.n:
            body: dict[str, Any] = {
                "model": self.model,
                "max_tokens": params.max_new_tokens,
                "temperature": params.temperature,
                "n": params.n - len(texts),
            }
            if params.stop:
                body["stop"] = list(params.stop)[:4]
            if params.temperature > 0:
                body["seed"] = params.seed * 1000 + attempt
            if self.chat:
                body["messages"] = chat
                data = self.post("/chat/completions", body)
                got = [(c.get("message") or {}).get("content") or "" for c in _choices(data)]
            else:
                body["prompt"] = render_plain(chat)
                data = self.post("/completions", body)
                got = [c.get("text") or "" for c in _choices(data)]
            if not got:
                raise BackendError(
                    f"{self.shown_url} returned no completion for model {self.model}"
                )
            texts.extend(got)
            attempt += 1
        return texts[: params.n]

    def _generate(
        self, chats: list[list[Message]], params: GenParams, done: Done | None = None
    ) -> list[list[str]]:
        return self._map(lambda c: self._one(c, params), chats, done)

    def _score(self, item: tuple[list[Message], str]) -> float:
        messages, completion = item
        prompt = render_plain(messages)
        if completion and not completion[0].isspace():
            completion = " " + completion  # plain prompts end with "Answer:"
        body = {
            "model": self.model,
            "prompt": prompt + completion,
            "max_tokens": 1,
            "temperature": 0.0,
            "echo": True,
            "logprobs": 1,
        }
        data = self.post("/completions", body)
        lp = (_choices(data) or [{}])[0].get("logprobs") or {}
        offsets, values = lp.get("text_offset"), lp.get("token_logprobs")
        if not offsets or not values:
            raise BackendError(
                f"{self.shown_url} does not return prompt log-probs (echo + logprobs); "
                "score with the transformers backend instead"
            )
        end = len(prompt) + len(completion)
        return float(
            sum(
                v
                for o, v in zip(offsets, values, strict=False)
                if v is not None and len(prompt) <= o < end
            )
        )

    def _logprobs(self, items: list[tuple[list[Message], str]]) -> list[float]:
        return self._map(self._score, items)


def _choices(data: dict[str, Any]) -> list[dict[str, Any]]:
    choices = data.get("choices") if isinstance(data, dict) else None
    return choices if isinstance(choices, list) else []


def _server_message(resp) -> str:
    try:
        data = resp.json()
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message", err) if isinstance(err, dict) else err
        text = str(msg)
    except ValueError:
        text = resp.text or resp.reason_phrase
    return " ".join(text.split())[:200] or resp.reason_phrase


def _reason(err: Exception) -> str:
    text = " ".join(str(err).split())
    if "refused" in text.lower():
        return "connection refused"
    return text[:160] or type(err).__name__


def redact_url(url: str) -> str:
    """`url` with any password in it replaced by `***` (for messages and saved configs)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
