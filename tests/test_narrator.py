"""The narrator: the template narrator's acceptance properties, the OpenAI-compatible client against a
real local HTTP server that speaks /v1/chat/completions, configuration, and the CLI."""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from moodmusic.analysis import Analysis, MoodReading, TimelineWindow
from moodmusic.narrator import (
    LlamaCppNarrator,
    Narration,
    NarratorConfig,
    NarratorConfigError,
    OpenAINarrator,
    TemplateNarrator,
    from_config,
    from_env,
    narrate,
)
from moodmusic.narrator.bench import random_analysis
from moodmusic.narrator.llm import TABLE2_PROMPT, build_messages, mood_details
from moodmusic.narrator.template import SECONDARY_NAMED, movement, sentences, template_narration
from moodmusic.narrator.words import MOOD_WORDS, moods_named, names_mood

QUADRANT_PROBS = {"happy": 0.1, "angry": 0.05, "sad": 0.15, "calm": 0.7}


def reading(valence: float, arousal: float) -> MoodReading:
    return MoodReading.from_point(valence, arousal, QUADRANT_PROBS)


def window(valence: float, arousal: float, index: int) -> TimelineWindow:
    return TimelineWindow(**vars(reading(valence, arousal)), start=3.0 * index, end=3.0 * index + 3.0)


@pytest.fixture
def chill_analysis() -> Analysis:
    """A chill clip (the Analyst-Interpreter paper's chill prototype) with a steady timeline."""
    return Analysis(overall=reading(0.4, -0.6), timeline=[window(0.4, -0.6, 0), window(0.45, -0.55, 1)], duration=6.0)


@pytest.fixture(scope="module")
def analyses() -> list[Analysis]:
    rng = random.Random(1234)
    return [random_analysis(rng) for _ in range(1000)]


# --- the one vocabulary table ------------------------------------------------------------------


def test_mood_words_are_disjoint_and_match_whole_words_with_inflections():
    seen: dict[str, str] = {}
    for mood, words in MOOD_WORDS.items():
        assert names_mood(mood, mood)
        for word in words.all:
            assert seen.setdefault(word, mood) == mood, f"{word!r} names both {seen[word]} and {mood}"
            assert moods_named(f"It is {word}.") == {mood}
    assert names_mood("So RELAXING and laid-back", "chill")
    assert names_mood("it energizes", "energy") and names_mood("pure energy!", "energy")
    assert not names_mood("a chillingly bad idea", "chill") and not names_mood("unchilled", "chill")
    assert moods_named("a driving, bittersweet song") == {"energy", "emotion"}


# --- the template narrator: the acceptance over 1,000 random analyses -----------------


def test_template_always_names_primary_and_the_secondary_from_weight_0_2(analyses):
    secondary_cases = 0
    for i, analysis in enumerate(analyses):
        text = narrate(analysis, seed=i, narrator=TemplateNarrator()).narrative
        (primary, _), (secondary, weight) = analysis.overall.ranked_moods()[:2]
        assert names_mood(text, primary), (primary, text)
        if weight >= SECONDARY_NAMED:
            secondary_cases += 1
            assert names_mood(text, secondary), (secondary, weight, text)
    assert secondary_cases > 100  # the random analyses do exercise the rule


def test_template_is_plain_two_or_three_sentences_never_repeated(analyses):
    for i, analysis in enumerate(analyses):
        n = template_narration(analysis, seed=i)
        parts = sentences(n.narrative)
        assert 2 <= len(parts) <= 3, n.narrative
        assert len(parts) == len(set(parts)), n.narrative
        assert not any(ch in n.narrative for ch in "*#_`[]\n"), n.narrative
        assert 2 <= len(n.recommendations) <= 3 and all(r.strip() for r in n.recommendations)
        assert n.visual_prompt and "\n" not in n.visual_prompt
        assert n.narrator == "template" and n.fallback_reason is None


def test_two_seeds_give_different_wording_in_at_least_80_percent(analyses):
    differ = sum(template_narration(a, seed=1).narrative != template_narration(a, seed=2).narrative for a in analyses)
    assert differ >= 0.8 * len(analyses), differ


def test_template_is_deterministic_for_a_seed(analyses):
    for analysis in analyses[:50]:
        assert template_narration(analysis, seed=7) == template_narration(analysis, seed=7)
    # a fresh Analysis with the same content gives the same text (nothing depends on object identity)
    copy = Analysis.from_dict(json.loads(json.dumps(analyses[0].as_dict())))
    assert template_narration(copy, seed=3) == template_narration(analyses[0], seed=3)


def test_template_tells_how_the_mood_moves():
    rising = Analysis(overall=reading(0.2, 0.0), timeline=[window(0.4, -0.6, 0), window(0.3, 0.0, 1), window(0.6, 0.6, 2)])
    assert movement(rising).kind == "mood" and movement(rising).direction == "up"
    last = sentences(template_narration(rising, seed=0).narrative)[-1]
    assert last.startswith(("It starts", "It opens", "The mood climbs")), last
    assert names_mood(last, "chill") and names_mood(last, "upbeat"), last

    louder = Analysis(overall=reading(0.6, 0.5), timeline=[window(0.6, 0.3, 0), window(0.6, 0.9, 1)])
    assert movement(louder).kind == "arousal" and movement(louder).direction == "up"
    steady = Analysis(overall=reading(0.6, 0.5), timeline=[window(0.6, 0.5, 0), window(0.62, 0.55, 1)])
    assert movement(steady) is None and movement(Analysis(overall=reading(0.6, 0.5))) is None


def test_template_narration_adds_well_under_5_ms(analyses):
    narrator = TemplateNarrator()
    times = []
    for i, analysis in enumerate(analyses[:300]):
        started = time.perf_counter()
        narrate(analysis, i, narrator)
        times.append(time.perf_counter() - started)
    times.sort()
    assert times[len(times) // 2] < 0.005, times[len(times) // 2]


# --- the Analyst-Interpreter paper's prompt ------------------------------------------------------------------------


def test_prompt_is_seed_000_table_2_filled_from_the_analysis(chill_analysis):
    system, user = build_messages(chill_analysis)
    assert system["role"] == "system" and user["role"] == "user"
    assert user["content"].startswith(TABLE2_PROMPT.format(primary_mood="chill", mood_details=mood_details(chill_analysis)))
    assert mood_details(chill_analysis).startswith("Chill: ") and "%" in mood_details(chill_analysis)
    assert '"narrative"' in user["content"] and '"visual_prompt"' in user["content"]


# --- the OpenAI-compatible client against a local server --------------------------------------

GOOD_REPLY = {
    "narrative": "Oh, this one is so relaxed, like a slow Sunday by the lake. There's a gentle warmth underneath that keeps it cosy.",
    "recommendations": ["Reading on a rainy afternoon", "Ambient and chillout playlists"],
    "visual_prompt": "A misty lake at dawn, soft pastel light, calm water",
}


class FakeLLM:
    """What the local server answers: set `mode` (and `content`) per test; `requests` records each call."""

    def __init__(self) -> None:
        self.mode = "good"
        self.content: str = json.dumps(GOOD_REPLY)
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def reset(self, mode: str = "good", content: str | None = None) -> None:
        with self.lock:
            self.mode, self.requests = mode, []
            self.content = json.dumps(GOOD_REPLY) if content is None else content


def make_handler(state: FakeLLM):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up (timeout test)
                pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            with state.lock:
                state.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                mode, content = state.mode, state.content
            if self.path != "/v1/chat/completions":
                return self._send(404, b'{"error": {"message": "not found"}}')
            if mode == "slow":
                time.sleep(0.8)
            if mode == "500":
                return self._send(500, b'{"error": {"message": "model crashed"}}')
            if mode == "401":
                return self._send(401, b'{"error": {"message": "invalid api key"}}')
            if mode == "malformed":
                return self._send(200, b'{"choices": [{"message": {"content": "unterminated', "application/json")
            if mode == "nochoices":
                return self._send(200, json.dumps({"id": "x", "object": "chat.completion", "choices": []}).encode())
            reply = {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            }
            self._send(200, json.dumps(reply).encode())

    return Handler


@pytest.fixture(scope="module")
def llm_server():
    state = FakeLLM()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


def client(state: FakeLLM, **kwargs) -> OpenAINarrator:
    options = {"model": "test-model", "timeout": 0.3, "retry_pause": 0.0, **kwargs}
    return OpenAINarrator(state.base_url, **options)


def assert_template_fallback(n: Narration, analysis: Analysis, seed: int, reason: str) -> None:
    assert n.narrator == "template"
    assert n.fallback_reason and n.fallback_reason.startswith("openai: ") and reason in n.fallback_reason, n.fallback_reason
    expected = template_narration(analysis, seed)
    assert (n.narrative, n.recommendations, n.visual_prompt) == (expected.narrative, expected.recommendations, expected.visual_prompt)


def test_openai_good_reply_is_used_and_the_request_speaks_the_protocol(llm_server, chill_analysis):
    llm_server.reset("good")
    n = client(llm_server, api_key="sk-test-123").narrate(chill_analysis, seed=5)
    assert n.narrator == "openai:test-model" and n.fallback_reason is None
    assert n.narrative == GOOD_REPLY["narrative"]
    assert n.recommendations == GOOD_REPLY["recommendations"] and n.visual_prompt == GOOD_REPLY["visual_prompt"]
    [request] = llm_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test-123"
    body = request["body"]
    assert body["model"] == "test-model" and body["seed"] == 5 and body["stream"] is False
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "its primary mood is chill" in body["messages"][1]["content"]


def test_openai_sends_no_authorization_without_a_key(llm_server, chill_analysis):
    llm_server.reset("good")
    client(llm_server).narrate(chill_analysis)
    assert "Authorization" not in llm_server.requests[0]["headers"]


def test_openai_plain_text_reply_is_accepted_and_completed_by_the_template(llm_server, chill_analysis):
    text = "```\n**Such a mellow track!** It drifts along like a lazy afternoon.\n```"
    llm_server.reset("good", content=text)
    n = client(llm_server).narrate(chill_analysis, seed=2)
    assert n.narrator == "openai:test-model" and n.fallback_reason is None
    assert n.narrative == "Such a mellow track! It drifts along like a lazy afternoon."
    assert n.recommendations == template_narration(chill_analysis, 2).recommendations


def test_openai_timeout_retries_once_then_falls_back(llm_server, chill_analysis):
    llm_server.reset("slow")
    started = time.perf_counter()
    n = client(llm_server, timeout=0.3).narrate(chill_analysis, seed=1)
    assert time.perf_counter() - started < 2.0
    assert_template_fallback(n, chill_analysis, 1, "timeout after 0.3 s (2 attempts)")
    assert len(llm_server.requests) == 2


def test_openai_http_500_is_retried_once_then_falls_back(llm_server, chill_analysis):
    llm_server.reset("500")
    n = client(llm_server).narrate(chill_analysis, seed=1)
    assert_template_fallback(n, chill_analysis, 1, "HTTP 500: model crashed (2 attempts)")
    assert len(llm_server.requests) == 2


def test_openai_http_401_is_not_retried(llm_server, chill_analysis):
    llm_server.reset("401")
    n = client(llm_server, api_key="wrong").narrate(chill_analysis, seed=1)
    assert_template_fallback(n, chill_analysis, 1, "HTTP 401: invalid api key")
    assert len(llm_server.requests) == 1 and "wrong" not in n.fallback_reason


@pytest.mark.parametrize(
    "mode,content,reason",
    [
        ("malformed", None, "malformed reply"),
        ("nochoices", None, "reply has no choices"),
        ("good", "   ", "empty text"),
        ("good", json.dumps({"narrative": "", "recommendations": []}), "empty text"),
        ("good", json.dumps({**GOOD_REPLY, "narrative": "An energetic, driving banger full of adrenaline."}), "does not name the primary mood 'chill'"),
        ("good", "This pounding, intense track is pure power from the first beat.", "does not name the primary mood"),
    ],
)
def test_openai_bad_replies_end_in_the_template_narration(llm_server, chill_analysis, mode, content, reason):
    llm_server.reset(mode, content=content)
    n = client(llm_server).narrate(chill_analysis, seed=4)
    assert_template_fallback(n, chill_analysis, 4, reason)
    assert len(llm_server.requests) == 1


def test_openai_unreachable_server_falls_back(chill_analysis):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    n = OpenAINarrator(f"http://127.0.0.1:{port}/v1", timeout=0.3, retry_pause=0.0).narrate(chill_analysis)
    assert n.narrator == "template" and "connection failed" in n.fallback_reason and "(2 attempts)" in n.fallback_reason


# --- configuration ------------------------------------------------------------------------------


def test_config_from_env_picks_the_backend(llm_server):
    assert isinstance(from_env({}), TemplateNarrator)
    env = {
        "MOODMUSIC_NARRATOR": "openai",
        "MOODMUSIC_LLM_BASE_URL": llm_server.base_url,
        "MOODMUSIC_LLM_MODEL": "qwen2.5-1.5b",
        "MOODMUSIC_LLM_API_KEY_ENV": "MY_LLM_KEY",
        "MY_LLM_KEY": "sk-from-env",
        "MOODMUSIC_LLM_TIMEOUT": "1.5",
    }
    narrator = from_env(env)
    assert isinstance(narrator, OpenAINarrator)
    assert narrator.name == "openai:qwen2.5-1.5b" and narrator.timeout == 1.5 and narrator.base_url == llm_server.base_url
    assert narrator._api_key == "sk-from-env" and "sk-from-env" not in repr(narrator)
    assert from_env({**env, "MOODMUSIC_LLM_API_KEY": "sk-direct"})._api_key == "sk-direct"
    gguf = from_env({"MOODMUSIC_NARRATOR": "llama-cpp", "MOODMUSIC_LLM_GGUF": "/models/tiny.gguf"})
    assert isinstance(gguf, LlamaCppNarrator) and gguf.name == "llama-cpp:tiny.gguf"
    assert "sk-direct" not in repr(NarratorConfig(kind="openai", api_key="sk-direct"))
    for bad in (
        {"MOODMUSIC_NARRATOR": "gpt"},
        {"MOODMUSIC_NARRATOR": "openai", "MOODMUSIC_LLM_TIMEOUT": "soon"},
        {"MOODMUSIC_NARRATOR": "openai", "MOODMUSIC_LLM_TIMEOUT": "0"},
        {"MOODMUSIC_NARRATOR": "llama-cpp"},
    ):
        with pytest.raises(NarratorConfigError):
            from_env(bad)
    assert isinstance(from_config(NarratorConfig()), TemplateNarrator)


def test_narrate_uses_the_environment_and_never_raises(monkeypatch, llm_server, chill_analysis):
    for name in ("MOODMUSIC_LLM_API_KEY", "MOODMUSIC_LLM_API_KEY_ENV", "MOODMUSIC_LLM_GGUF"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MOODMUSIC_NARRATOR", "openai")
    monkeypatch.setenv("MOODMUSIC_LLM_BASE_URL", llm_server.base_url)
    monkeypatch.setenv("MOODMUSIC_LLM_MODEL", "env-model")
    llm_server.reset("good")
    assert narrate(chill_analysis).narrator == "openai:env-model"

    monkeypatch.setenv("MOODMUSIC_NARRATOR", "gpt")
    n = narrate(chill_analysis, seed=3)
    assert n.narrator == "template" and n.fallback_reason.startswith("config: unknown narrator 'gpt'")
    monkeypatch.delenv("MOODMUSIC_NARRATOR")
    assert narrate(chill_analysis, seed=3) == template_narration(chill_analysis, 3)

    class Broken:
        name = "broken"

        def narrate(self, analysis, seed=0):
            raise RuntimeError("boom")

    n = narrate(chill_analysis, seed=3, narrator=Broken())
    assert n.narrator == "template" and n.fallback_reason == "broken: RuntimeError: boom"


def test_llama_cpp_missing_file_or_package_falls_back(tmp_path, chill_analysis):
    n = LlamaCppNarrator(tmp_path / "missing.gguf").narrate(chill_analysis, seed=1)
    assert n.narrator == "template" and n.fallback_reason == f"llama-cpp: GGUF file not found: {tmp_path / 'missing.gguf'}"
    fake = tmp_path / "tiny.gguf"
    fake.write_bytes(b"GGUF\x03\x00\x00\x00")  # not a loadable model either way
    n = LlamaCppNarrator(fake, timeout=5.0).narrate(chill_analysis, seed=1)
    assert n.narrator == "template" and n.fallback_reason.startswith("llama-cpp: ")
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        assert "llama-cpp-python is not installed" in n.fallback_reason


# --- the command line ---------------------------------------------------------------------------


def test_cli_narrates_a_saved_analysis(tmp_path, capsys, monkeypatch, chill_analysis):
    from moodmusic.cli import main

    monkeypatch.delenv("MOODMUSIC_NARRATOR", raising=False)
    path = tmp_path / "analysis.json"
    path.write_text(json.dumps(chill_analysis.as_dict()))
    assert main(["narrate", "--analysis-json", str(path), "--seed", "9", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["narration"] == template_narration(chill_analysis, 9).as_dict()
    assert out["analysis"]["primary_mood"] == "chill"

    saved = tmp_path / "narrated.json"  # the --json output reads back in
    saved.write_text(json.dumps(out))
    assert main(["narrate", "--analysis-json", str(saved), "--seed", "9"]) == 0
    text = capsys.readouterr().out
    assert template_narration(chill_analysis, 9).narrative in text and "(narrator: template)" in text

    with pytest.raises(SystemExit, match="either an audio FILE or --analysis-json"):
        main(["narrate"])
    with pytest.raises(SystemExit, match="no such file"):
        main(["narrate", str(tmp_path / "nope.wav")])
    (tmp_path / "bad.json").write_text('{"overall": {}}')
    with pytest.raises(SystemExit, match="is not an analysis"):
        main(["narrate", "--analysis-json", str(tmp_path / "bad.json")])


def test_cli_explains_when_the_classifier_cannot_load(tmp_path, monkeypatch):
    from moodmusic import classifier
    from moodmusic.narrator.cli import analyse

    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"RIFF")

    def no_checkpoint(*args, **kwargs):
        raise FileNotFoundError("checkpoints/classifier/model.safetensors")

    monkeypatch.setattr(classifier, "load", no_checkpoint)
    with pytest.raises(SystemExit, match="no classifier checkpoint could be loaded.*--analysis-json"):
        analyse(str(clip))
    monkeypatch.delattr(classifier, "load")
    with pytest.raises(SystemExit, match="classifier.load is missing"):
        analyse(str(clip))


def test_bench_reports_the_acceptance_numbers(tmp_path, capsys):
    from moodmusic.cli import main

    out = tmp_path / "bench.json"
    assert main(["bench", "narrator", "--n", "60", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["acceptance"]["primary_named_rate"] == 1.0 and result["timing"]["template"]["p95_ms"] < 5.0
    assert "two seeds differ" in capsys.readouterr().out
