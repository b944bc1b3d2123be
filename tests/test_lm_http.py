"""The OpenAI-compatible HTTP backend: one clear error when the server is down or
answers 4xx/5xx, retries with backoff, the API key sent but never shown; and (marked
`integration`) a real llama.cpp server on loopback serving a zoo GGUF."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from w2s.errors import BackendError
from w2s.models.lm.openai_http import OpenAILanguageModel


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_is_one_clear_error():
    port = free_port()  # bound then closed: nothing listens there
    lm = OpenAILanguageModel(
        "m", f"http://127.0.0.1:{port}/v1", max_retries=1, backoff=0.01, cache=False
    )
    start = time.perf_counter()
    with pytest.raises(BackendError) as err:
        lm.complete(["hello"])
    msg = str(err.value)
    assert "\n" not in msg and f"127.0.0.1:{port}" in msg
    assert "cannot reach" in msg and "connection refused" in msg and "2 attempt(s)" in msg
    assert time.perf_counter() - start < 10


class Stub(BaseHTTPRequestHandler):
    """Answers from a script of (status, body) per request; records requests."""

    script: list = []
    seen: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Stub.seen.append((self.path, dict(self.headers), body))
        status, payload = Stub.script.pop(0) if Stub.script else (200, None)
        if payload is None:
            text = body["messages"][-1]["content"] if "messages" in body else body["prompt"]
            payload = {"choices": [{"message": {"content": f"echo {text}"}}] * body.get("n", 1)}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Stub.script, Stub.seen = [], []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_retries_5xx_then_succeeds_and_sends_the_key(stub, monkeypatch):
    monkeypatch.setenv("W2S_TEST_KEY", "sk-secret-123")
    Stub.script = [(503, {"error": {"message": "busy"}}), (500, {"error": "oops"})]
    lm = OpenAILanguageModel("m", stub, api_key_env="W2S_TEST_KEY", backoff=0.01, cache=False)
    assert lm.complete(["hi"]) == ["echo hi"]
    assert len(Stub.seen) == 3
    path, headers, body = Stub.seen[-1]
    assert path == "/v1/chat/completions" and body["model"] == "m"
    assert headers["Authorization"] == "Bearer sk-secret-123"


def test_4xx_fails_at_once_without_leaking_the_key(stub, monkeypatch):
    monkeypatch.setenv("W2S_TEST_KEY", "sk-secret-123")
    Stub.script = [(401, {"error": {"message": "invalid api key\nsecond line"}})]
    lm = OpenAILanguageModel("m", stub, api_key_env="W2S_TEST_KEY", backoff=0.01, cache=False)
    with pytest.raises(BackendError) as err:
        lm.complete(["hi"])
    msg = str(err.value)
    assert len(Stub.seen) == 1 and "\n" not in msg
    assert "HTTP 401: invalid api key second line" in msg and "$W2S_TEST_KEY" in msg
    assert "sk-secret" not in msg


def test_5xx_exhausted_is_one_line(stub):
    Stub.script = [(502, {"error": {"message": "bad gateway"}})] * 3
    lm = OpenAILanguageModel("m", stub, max_retries=2, backoff=0.01, cache=False)
    with pytest.raises(BackendError, match=r"failed after 3 attempt\(s\): HTTP 502: bad gateway"):
        lm.complete(["hi"])


def test_concurrent_requests_keep_prompt_order(stub):
    lm = OpenAILanguageModel("m", stub, concurrency=4, cache=False)
    prompts = [f"p{i}" for i in range(12)]
    assert lm.complete(prompts) == [f"echo {p}" for p in prompts]


def test_cli_reports_a_down_server_in_one_line(w2s_cli, tmp_path):
    from tests.conftest import error_lines

    url = f"http://127.0.0.1:{free_port()}/v1"
    args = ["run", "--task", "persona", "--weak", "w", "--strong", "s", "--methods", "unaltered"]
    for side in ("weak", "strong"):
        args += ["--set", f"generation.{side}_backend.backend=openai"]
        args += ["--set", f"generation.{side}_backend.base_url={url}"]
        args += ["--set", f"generation.{side}_backend.max_retries=0"]
    proc = w2s_cli(*args, "--set", "data.n_test=4", "--out", str(tmp_path / "run"))
    lines = error_lines(proc)
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "cannot reach the OpenAI-compatible server" in lines[0]


# -- integration: a real llama.cpp server on loopback --------------------------------------


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    pytest.importorskip(
        "llama_cpp.server",
        reason="llama-cpp-python[server] is not installed (make test-integration installs it)",
    )
    from w2s.zoo import ZOO, resolve_model
    from w2s.zoo.fetch import gguf_path

    resolve_model("smollm2-135m")  # fetches the GGUF on first use
    gguf = gguf_path(ZOO["smollm2-135m"])
    port = free_port()
    log = open(tmp_path_factory.mktemp("llama") / "server.log", "w+")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            str(min(2, os.cpu_count() or 1)),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    import httpx

    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"llama.cpp server exited: {log.read()[-500:]}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama.cpp server did not start within 120 s")
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.mark.integration
def test_llama_cpp_server_generates_scores_and_samples(llama_server):
    lm = OpenAILanguageModel("smollm2", llama_server, concurrency=2, max_retries=1, cache=False)
    prompts = ["What is the capital of France?", "Name a primary color.", "Say hello."]
    first = lm.complete(prompts, max_new_tokens=24)
    assert len(first) == 3 and all(a.strip() for a in first)
    assert lm.complete(prompts, max_new_tokens=24) == first  # greedy is deterministic
    samples = lm.generate(prompts[:1], max_new_tokens=16, temperature=1.0, n=3)[0]
    assert len(samples) == 3
    stop = lm.complete(["Count from 1 to 10 separated by commas."], max_new_tokens=40, stop=["5"])
    assert "5" not in stop[0] and "6" not in stop[0]
    good = lm.logprobs("What is the capital of France?", "Paris")
    bad = lm.logprobs("What is the capital of France?", "Banana")
    assert bad < good < 0


@pytest.mark.integration
@pytest.mark.xfail(
    reason="llama-cpp-python 0.3.36 returns wrong echo log-probs (its own Llama.eval scores "
    "agree with transformers within ~0.3 nats; create_completion(echo=True) does not)",
    strict=False,
)
def test_llama_cpp_log_probs_agree_with_transformers(llama_server):
    from w2s.models.lm.hf import HFLanguageModel

    server = OpenAILanguageModel("smollm2", llama_server, cache=False)
    local = HFLanguageModel("smollm2-135m", chat=False, cache=False)  # same plain prompt
    pairs = [
        ("What is the capital of France?", "Paris is the capital of France."),
        ("Name a primary color.", "Red is a primary color."),
    ]
    a, b = server.logprobs_batch(pairs), local.logprobs_batch(pairs)
    for x, y in zip(a, b, strict=True):
        assert abs(x - y) < 1.5, (a, b)  # Q4 GGUF vs its bf16 dequantisation


@pytest.mark.integration
def test_llama_cpp_server_plain_completions_and_cache(llama_server, tmp_path, monkeypatch):
    from w2s.models.lm.cache import LMCache

    lm = OpenAILanguageModel("smollm2", llama_server, chat=False, revision="t")
    lm._cache = LMCache(lm.key, root=tmp_path)
    # SmolLM2-135M-Instruct ends some plain answers at once (an empty completion, in
    # transformers too); this question gets a real one
    out = lm.complete(["What is 2 + 2?"], max_new_tokens=12)
    assert "4" in out[0] and "Question:" not in out[0]
    monkeypatch.setattr(lm, "_generate", lambda *a, **k: pytest.fail("not cached"))
    assert lm.complete(["What is 2 + 2?"], max_new_tokens=12) == out
