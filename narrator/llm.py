"""LLM narrators: any OpenAI-compatible chat-completions endpoint, or a local GGUF file.

Both fill the Analyst-Interpreter paper's prompt (its Table 2) from the analysis and ask for a JSON object with its
three outputs (narrative, recommendations, visual_prompt); a plain-text reply is accepted too,
the narrative being the text. Neither ever raises to the caller: on any failure (timeout, HTTP
error, malformed reply, no choices, empty text) or on a narrative that contradicts the analysis
(it names neither the primary mood nor a synonym from `narrator.words`), the template narrator
answers, with `narrator="template"` and `fallback_reason` saying what went wrong.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from moodmusic.narrator.base import Narration, Narrator
from moodmusic.narrator.template import TemplateNarrator, movement, template_narration
from moodmusic.narrator.words import names_mood

if TYPE_CHECKING:
    from moodmusic.analysis import Analysis

# The Analyst-Interpreter paper's Table 2, verbatim; {primary_mood} and {mood_details} come from the analysis.
TABLE2_PROMPT = (
    "You are a creative and friendly music expert. A piece of music has been analyzed and its primary mood is {primary_mood}.\n"
    "Here is the full emotional palette: {mood_details}\n"
    "Based on this, write a short, evocative paragraph (2-3 sentences) describing the feel of this music. "
    "Make it sound personal and engaging, like you're describing it to a friend. Do not use markdown or titles."
)
# What the Analyst-Interpreter paper's LLM also returned (recommendations, a visual prompt), asked for as JSON.
JSON_INSTRUCTIONS = (
    "Answer with one JSON object and nothing else, with these keys: "
    '"narrative" (that paragraph, plain text), '
    '"recommendations" (a list of 2 or 3 short mood-aligned suggestions: activities, settings or similar music styles), '
    '"visual_prompt" (one concise line for an image generator that captures the mood).'
)
SYSTEM_PROMPT = "You are a creative and friendly music expert. You reply with a single JSON object."


class NarratorConfigError(ValueError):
    """A narrator configuration that cannot work; the message names the setting to fix."""


# --- the prompt ---------------------------------------------------------------------------------


def mood_details(analysis: Analysis) -> str:
    """The Analyst-Interpreter paper's palette: 'Upbeat: 34.2%, Emotion: 27.0%, Chill: 22.5%, Energy: 16.3%'."""
    return ", ".join(f"{mood.capitalize()}: {100 * weight:.1f}%" for mood, weight in analysis.overall.ranked_moods())


def _context(analysis: Analysis) -> str:
    """What the analysis adds to the Analyst-Interpreter paper's input: the point, the quadrant, the movement over time."""
    overall = analysis.overall
    lines = [
        f"Valence (-1 unpleasant to +1 pleasant): {overall.valence:+.2f}; "
        f"arousal (-1 calm to +1 energetic): {overall.arousal:+.2f}; quadrant: {overall.quadrant}."
    ]
    move = movement(analysis)
    if move is not None:
        start, end = move.start, move.end
        lines.append(
            f"Over time the mood moves from {start.primary_mood} (arousal {start.arousal:+.2f}, valence {start.valence:+.2f}) "
            f"to {end.primary_mood} (arousal {end.arousal:+.2f}, valence {end.valence:+.2f}); mention how it moves."
        )
    return "\n".join(lines)


def build_messages(analysis: Analysis) -> list[dict[str, str]]:
    """System and user messages: the Analyst-Interpreter paper's Table 2 filled from the analysis, then the JSON request."""
    user = "\n\n".join(
        (
            TABLE2_PROMPT.format(primary_mood=analysis.overall.primary_mood, mood_details=mood_details(analysis)),
            _context(analysis),
            JSON_INSTRUCTIONS,
        )
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


# --- reading a reply ----------------------------------------------------------------------------


class _Failure(Exception):
    """A reason to let the template narrator answer (the message is the reason)."""


_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_MARKDOWN = re.compile(r"(\*+|__|`|^#+\s*|^\s*[-*•]\s+|^\s*\d+[.)]\s+)", re.MULTILINE)


def _plain(text: str) -> str:
    """Plain text on one line: markdown emphasis, headings and list markers removed."""
    return " ".join(_MARKDOWN.sub("", text).split())


def _json_object(text: str) -> dict | None:
    text = _FENCE.sub("", text.strip())
    for candidate in (text, text[text.find("{") : text.rfind("}") + 1] if "{" in text else ""):
        if not candidate:
            continue
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.splitlines()
    if not isinstance(value, list):
        return []
    return [item for item in (_plain(str(v)) for v in value if isinstance(v, (str, int, float))) if item][:3]


def completion_text(payload: Any) -> str:
    """The assistant text of a chat-completions reply; `_Failure` when there is none."""
    if not isinstance(payload, dict):
        raise _Failure("malformed reply (not a JSON object)")
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _Failure("reply has no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if content is None and isinstance(choice, dict):
        content = choice.get("text")  # completions-style servers
    if not isinstance(content, str):
        raise _Failure("malformed reply (choice has no message content)")
    if not content.strip():
        raise _Failure("empty text")
    return content


def narration_from_text(text: str, analysis: Analysis, seed: int, name: str) -> Narration:
    """Turn the LLM's text into a Narration, or `_Failure` when it is empty or contradicts the analysis.

    A JSON object gives all three outputs; plain text is the narrative. Recommendations or a visual
    prompt the reply lacks come from the template narrator.
    """
    data = _json_object(text)
    if data is not None:
        story = _plain(str(data.get("narrative") or data.get("paragraph") or data.get("text") or ""))
        recs = _string_list(data.get("recommendations"))
        visual = _plain(str(data.get("visual_prompt") or data.get("visual") or ""))
    else:
        story, recs, visual = _plain(text), [], ""
    if not story:
        raise _Failure("empty text")
    primary = analysis.overall.primary_mood
    if not names_mood(story, primary):
        raise _Failure(f"reply does not name the primary mood {primary!r} or a synonym")
    if not recs or not visual:
        fallback = template_narration(analysis, seed)
        recs = recs or fallback.recommendations
        visual = visual or fallback.visual_prompt
    return Narration(narrative=story, recommendations=recs, visual_prompt=visual, narrator=name, fallback_reason=None)


def fallback(analysis: Analysis, seed: int, reason: str) -> Narration:
    """The template narrator's answer, saying why it answered."""
    narration = template_narration(analysis, seed)
    narration.fallback_reason = reason
    return narration


# --- OpenAI-compatible endpoint -----------------------------------------------------------------


class OpenAINarrator:
    """POST {base_url}/chat/completions on any OpenAI-compatible server.

    That covers llama.cpp's `llama-server` (http://127.0.0.1:8080/v1), Ollama
    (http://127.0.0.1:11434/v1), vLLM (http://127.0.0.1:8000/v1) and hosted APIs. `timeout` bounds
    each phase of a request (connect, write, each read); a timeout, a connection error, HTTP 429 or a
    5xx is retried `retries` times; anything else that goes wrong ends in the template narrator.
    """

    def __init__(
        self,
        base_url: str,
        model: str = "local",
        api_key: str | None = None,
        timeout: float = 20.0,
        retries: int = 1,
        temperature: float = 0.8,
        max_tokens: int = 400,
        retry_pause: float = 0.25,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key or None
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.retry_pause = float(retry_pause)
        self.name = f"openai:{model}"

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAINarrator(base_url={self.base_url!r}, model={self.model!r}, key={'set' if self._api_key else 'none'}, timeout={self.timeout:g})"

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def request_body(self, analysis: Analysis, seed: int) -> dict:
        return {
            "model": self.model,
            "messages": build_messages(analysis),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": int(seed),
            "stream": False,
        }

    def _post(self, body: dict) -> Any:
        import httpx

        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        attempts = 1 + self.retries
        last = ""
        with httpx.Client(timeout=httpx.Timeout(self.timeout)) as client:
            for attempt in range(attempts):
                if attempt:
                    time.sleep(self.retry_pause)
                try:
                    response = client.post(self.url, json=body, headers=headers)
                except httpx.TimeoutException:
                    last = f"timeout after {self.timeout:g} s"
                    continue
                except httpx.TransportError as exc:
                    last = f"connection failed ({type(exc).__name__}: {exc})"
                    continue
                status = response.status_code
                if status == 429 or status >= 500:
                    last = f"HTTP {status}{_error_detail(response)}"
                    continue
                if status >= 400:
                    raise _Failure(f"HTTP {status}{_error_detail(response)}")
                try:
                    return response.json()
                except ValueError:
                    raise _Failure("malformed reply (body is not JSON)") from None
        raise _Failure(f"{last} ({attempts} attempt{'s' if attempts > 1 else ''})")

    def narrate(self, analysis: Analysis, seed: int = 0) -> Narration:
        try:
            payload = self._post(self.request_body(analysis, seed))
            return narration_from_text(completion_text(payload), analysis, seed, self.name)
        except _Failure as failure:
            return fallback(analysis, seed, f"openai: {failure}")
        except Exception as exc:  # never raise to the caller
            return fallback(analysis, seed, f"openai: {type(exc).__name__}: {exc}")


def _error_detail(response: Any) -> str:
    """A short server message for an HTTP error (OpenAI's {"error": {"message": ...}})."""
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except Exception:
        return ""
    return f": {str(message)[:160]}" if message else ""


# --- local GGUF through llama-cpp-python ---------------------------------------------------------


class LlamaCppNarrator:
    """A local GGUF model through llama-cpp-python (the optional `llm` extra).

    The model loads on first use, in a single worker thread that also runs every generation, so
    calls are serialised and `timeout` bounds how long a caller waits (a generation that overruns
    finishes in the background). A missing package or file ends in the template narrator.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        timeout: float = 60.0,
        temperature: float = 0.8,
        max_tokens: int = 400,
        n_ctx: int = 2048,
        n_threads: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.timeout = float(timeout)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.n_ctx = int(n_ctx)
        self.n_threads = n_threads
        self.name = f"llama-cpp:{self.path.name}"
        self._llm: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._llm is None:
            if not self.path.is_file():
                raise _Failure(f"GGUF file not found: {self.path}")
            try:
                import llama_cpp
            except ImportError:
                raise _Failure("llama-cpp-python is not installed (pip install llama-cpp-python)") from None
            self._llm = llama_cpp.Llama(model_path=str(self.path), n_ctx=self.n_ctx, n_threads=self.n_threads, verbose=False)
        return self._llm

    def _generate(self, messages: list[dict[str, str]], seed: int) -> Any:
        llm = self._load()
        return llm.create_chat_completion(
            messages=messages,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            seed=int(seed),
            response_format={"type": "json_object"},
        )

    def narrate(self, analysis: Analysis, seed: int = 0) -> Narration:
        try:
            if self._llm is None and not self.path.is_file():  # fail fast, before any thread
                raise _Failure(f"GGUF file not found: {self.path}")
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-cpp")
            future = self._executor.submit(self._generate, build_messages(analysis), seed)
            try:
                payload = future.result(timeout=self.timeout)
            except FutureTimeout:
                future.cancel()
                raise _Failure(f"timeout after {self.timeout:g} s") from None
            return narration_from_text(completion_text(payload), analysis, seed, self.name)
        except _Failure as failure:
            return fallback(analysis, seed, f"llama-cpp: {failure}")
        except Exception as exc:  # never raise to the caller
            return fallback(analysis, seed, f"llama-cpp: {type(exc).__name__}: {exc}")


# --- configuration ------------------------------------------------------------------------------

KINDS = ("template", "openai", "llama-cpp")
_KIND_ALIASES = {
    "": "template", "template": "template", "none": "template",
    "openai": "openai", "openai-compatible": "openai", "llama-server": "openai", "ollama": "openai", "vllm": "openai",
    "llama-cpp": "llama-cpp", "llama_cpp": "llama-cpp", "llamacpp": "llama-cpp", "gguf": "llama-cpp",
}  # fmt: skip


@dataclass(frozen=True)
class NarratorConfig:
    """Which narrator speaks, and how to reach it (see `from_env` for the variables)."""

    kind: str = "template"  # template | openai | llama-cpp
    base_url: str = "http://127.0.0.1:8080/v1"  # OpenAI-compatible endpoint (llama-server's default)
    model: str = "local"
    api_key: str | None = field(default=None, repr=False)  # the key itself ...
    api_key_env: str | None = None  # ... or the name of the environment variable that holds it
    timeout: float = 20.0  # seconds
    retries: int = 1
    temperature: float = 0.8
    max_tokens: int = 400
    gguf: str | None = None  # path of a local .gguf file, for kind llama-cpp

    def resolved_key(self, environ: dict[str, str] | None = None) -> str | None:
        if self.api_key:
            return self.api_key
        if self.api_key_env:
            return (os.environ if environ is None else environ).get(self.api_key_env) or None
        return None


def from_config(config: NarratorConfig, environ: dict[str, str] | None = None) -> Narrator:
    """The narrator a configuration names; `NarratorConfigError` when it cannot work."""
    kind = _KIND_ALIASES.get(config.kind.strip().lower())
    if kind is None:
        raise NarratorConfigError(f"unknown narrator {config.kind!r}; MOODMUSIC_NARRATOR is one of: {', '.join(KINDS)}")
    if config.timeout <= 0:
        raise NarratorConfigError(f"MOODMUSIC_LLM_TIMEOUT must be positive, got {config.timeout}")
    if kind == "template":
        return TemplateNarrator()
    if kind == "openai":
        if not config.base_url.startswith(("http://", "https://")):
            raise NarratorConfigError(f"MOODMUSIC_LLM_BASE_URL must start with http:// or https://, got {config.base_url!r}")
        return OpenAINarrator(
            config.base_url, model=config.model, api_key=config.resolved_key(environ), timeout=config.timeout,
            retries=config.retries, temperature=config.temperature, max_tokens=config.max_tokens,
        )  # fmt: skip
    if not config.gguf:
        raise NarratorConfigError("narrator llama-cpp needs MOODMUSIC_LLM_GGUF, the path of a .gguf file")
    return LlamaCppNarrator(config.gguf, timeout=config.timeout, temperature=config.temperature, max_tokens=config.max_tokens)


def config_from_env(environ: dict[str, str] | None = None) -> NarratorConfig:
    """Read the configuration from the environment.

    MOODMUSIC_NARRATOR       template (default) | openai | llama-cpp
    MOODMUSIC_LLM_BASE_URL   e.g. http://127.0.0.1:8080/v1 (llama-server), http://127.0.0.1:11434/v1 (Ollama)
    MOODMUSIC_LLM_MODEL      model name sent to the server (default "local")
    MOODMUSIC_LLM_API_KEY    the key, sent as "Authorization: Bearer ..."
    MOODMUSIC_LLM_API_KEY_ENV  or the name of the variable holding the key (e.g. OPENAI_API_KEY)
    MOODMUSIC_LLM_TIMEOUT    seconds (default 20)
    MOODMUSIC_LLM_RETRIES    retries on timeouts, connection errors, 429 and 5xx (default 1)
    MOODMUSIC_LLM_GGUF       path of a .gguf file for llama-cpp
    """
    env = os.environ if environ is None else environ
    defaults = NarratorConfig()

    def number(name: str, default: float, cast: type = float) -> Any:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            return cast(raw)
        except ValueError:
            raise NarratorConfigError(f"{name} must be a number, got {raw!r}") from None

    return NarratorConfig(
        kind=env.get("MOODMUSIC_NARRATOR", "").strip() or "template",
        base_url=env.get("MOODMUSIC_LLM_BASE_URL", "").strip() or defaults.base_url,
        model=env.get("MOODMUSIC_LLM_MODEL", "").strip() or defaults.model,
        api_key=env.get("MOODMUSIC_LLM_API_KEY", "").strip() or None,
        api_key_env=env.get("MOODMUSIC_LLM_API_KEY_ENV", "").strip() or None,
        timeout=number("MOODMUSIC_LLM_TIMEOUT", defaults.timeout),
        retries=number("MOODMUSIC_LLM_RETRIES", defaults.retries, int),
        gguf=env.get("MOODMUSIC_LLM_GGUF", "").strip() or None,
    )


def from_env(environ: dict[str, str] | None = None) -> Narrator:
    """The narrator the environment configures (the template narrator when nothing is set)."""
    env = os.environ if environ is None else environ
    return from_config(config_from_env(env), env)


__all__ = [
    "JSON_INSTRUCTIONS", "KINDS", "LlamaCppNarrator", "NarratorConfig", "NarratorConfigError", "OpenAINarrator",
    "TABLE2_PROMPT", "build_messages", "config_from_env", "fallback", "from_config", "from_env", "mood_details",
]  # fmt: skip
