"""The Ollama Modelfile of an export (the guide's step 5.4) and the same model as an /api/create request.

FROM ./model-q8_0.gguf
ADAPTER ./adapter-f16.gguf          (adapter mode only)
TEMPLATE \"\"\"…derived from the tokenizer's chat template…\"\"\"
PARAMETER temperature 0.7
PARAMETER top_p 0.9
PARAMETER stop "<|im_end|>"
SYSTEM \"\"\"Tu es un assistant expert…\"\"\"
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dyag_core.export.plan import ExportError

# The guide's step 5.4.
DEFAULT_SYSTEM_PROMPT = (
    "Tu es un assistant expert en applications du système d'information français.\n"
    "Tu réponds de manière précise et concise aux questions sur les applications."
)
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.9
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*(/[a-zA-Z0-9][a-zA-Z0-9._-]*)?(:[a-zA-Z0-9][a-zA-Z0-9._-]{0,127})?$")


def check_model_name(name: str) -> str:
    """An Ollama model name ("applications-ia", "team/model:tag")."""
    name = name.strip()
    if not _NAME.match(name):
        raise ExportError(
            "invalid_request",
            f"{name!r} is not a valid Ollama model name (letters, digits, '.', '_', '-', an optional "
            "namespace/ and :tag), e.g. applications-ia",
        )
    return name


def _triple_quoted(text: str, what: str) -> str:
    if '"""' in text:
        raise ExportError("invalid_request", f'the {what} contains """, which a Modelfile cannot quote')
    return f'"""{text}"""'


def _parameter_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True, slots=True)
class ModelfileSpec:
    model_file: str  # the GGUF FROM names, relative to the Modelfile
    template: str
    system: str = DEFAULT_SYSTEM_PROMPT
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    stop: tuple[str, ...] = ()
    adapter_file: str = ""  # the adapter GGUF ADAPTER names (adapter mode)
    extra: Mapping[str, Any] = field(default_factory=dict)  # more PARAMETERs (num_ctx…)

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {"temperature": self.temperature, "top_p": self.top_p}
        params.update(self.extra)
        if self.stop:
            params["stop"] = list(self.stop)
        return params

    def text(self) -> str:
        lines = [f"FROM ./{self.model_file}"]
        if self.adapter_file:
            lines.append(f"ADAPTER ./{self.adapter_file}")
        lines.append(f"TEMPLATE {_triple_quoted(self.template, 'template')}")
        for key, value in self.parameters().items():
            for item in value if isinstance(value, list) else [value]:
                lines.append(f"PARAMETER {key} {_parameter_value(item)}")
        if self.system:
            lines.append(f"SYSTEM {_triple_quoted(self.system, 'system prompt')}")
        return "\n".join(lines) + "\n"

    def create_request(self, name: str, digests: Mapping[str, str]) -> dict[str, Any]:
        """The body of Ollama's POST /api/create for this Modelfile, once each file is a blob (digests:
        file name -> "sha256:<hex>")."""
        body: dict[str, Any] = {
            "model": check_model_name(name),
            "files": {self.model_file: digests[self.model_file]},
            "template": self.template,
            "parameters": self.parameters(),
            "stream": True,
        }
        if self.adapter_file:
            body["adapters"] = {self.adapter_file: digests[self.adapter_file]}
        if self.system:
            body["system"] = self.system
        return body


def create_command(name: str, modelfile: str = "Modelfile", folder: str = "") -> str:
    """The exact shell command that creates the model from an export bundle."""
    prefix = f"cd {shlex.quote(folder)} && " if folder else ""
    return f"{prefix}ollama create {shlex.quote(check_model_name(name))} -f {shlex.quote(modelfile)}"


def parse_modelfile(text: str) -> dict[str, Any]:
    """The instructions of a Modelfile (FROM, ADAPTER, TEMPLATE, SYSTEM, PARAMETER…) as Ollama's parser reads
    them: one instruction per line, values in \"\"\"…\"\"\" may span lines, "…" values are JSON-like strings."""
    out: dict[str, Any] = {"parameters": {}}
    pos = 0
    while pos < len(text):
        line_end = text.find("\n", pos)
        line_end = len(text) if line_end < 0 else line_end
        line = text[pos:line_end].strip()
        if not line or line.startswith("#"):
            pos = line_end + 1
            continue
        command, _, rest = line.partition(" ")
        command = command.upper()
        value_start = text.index(rest, pos) if rest else line_end
        if rest.startswith('"""'):
            close = text.find('"""', value_start + 3)
            if close < 0:
                raise ExportError("invalid_request", f'unterminated """ in the Modelfile\'s {command}')
            value: Any = text[value_start + 3 : close]
            pos = text.find("\n", close)
            pos = len(text) if pos < 0 else pos + 1
        else:
            value = rest.strip()
            pos = line_end + 1
        if command == "PARAMETER":
            key, _, raw = str(value).partition(" ")
            raw = raw.strip()
            parsed: Any = (
                json.loads(raw) if raw.startswith('"') else (float(raw) if re.fullmatch(r"-?\d+(\.\d+)?", raw) else raw)
            )
            if key == "stop":
                out["parameters"].setdefault("stop", []).append(parsed)
            else:
                out["parameters"][key] = parsed
        else:
            out[command.lower()] = value
    return out


def stop_parameters(stop: Sequence[str]) -> list[str]:
    return [s for s in dict.fromkeys(stop) if s]
