"""The response cache: identical requests get the stored answer instead of a new (paid) one.

The key is a SHA-256 over the cache format version, what the provider says changes an answer
(kind, base URL, model, temperature, max tokens, reasoning effort, extra parameters) and the
messages, never the key. An entry is one JSON file, `<key[:2]>/<key>.json`, written to a
temporary file and renamed into place, so a killed run leaves whole entries or none. A file that
does not parse is deleted and the request sent again.

A response lands here before it lands in the store: a run killed between the two finds it here on
resume and does not pay for it twice. `--no-cache` asks the models again (new samples); the store
keeps every answer either way. Replay answers are never cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile
from typing import Any

from .keys import redact

FORMAT_VERSION = 1


def request_key(identity: dict[str, Any], messages: list[dict[str, str]] | tuple) -> str:
    payload = {"format": FORMAT_VERSION, "identity": identity, "messages": list(messages)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


class ResponseCache:
    def __init__(self, folder: str | os.PathLike):
        self.folder = pathlib.Path(folder)

    def _path(self, key: str) -> pathlib.Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            path.unlink(missing_ok=True)  # torn or foreign: ask again
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION or data.get("key") != key:
            return None
        return data.get("response")

    def put(self, key: str, response: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = redact(json.dumps({"format": FORMAT_VERSION, "key": key, "response": response}, ensure_ascii=False))
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            pathlib.Path(tmp).unlink(missing_ok=True)
            raise
