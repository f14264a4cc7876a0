"""Mailbox providers: which recipient domains are Gmail, Microsoft, Yahoo, Apple ...

The map is data, ``data/mailbox_providers.yaml`` in the package; a file of the user's own
(``engscore health --providers FILE``, ``health.providers`` in ``engscore.yaml``) replaces it:

```yaml
version: 1
providers:
  Gmail: [gmail.com, googlemail.com]
  Microsoft: [outlook.*, hotmail.*, live.*, msn.com]
```

Read with the safe loader; unknown keys, malformed patterns and a pattern listed twice are
errors naming the file and line.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from engscore.engine.health import MailboxProviders
from engscore.errors import ConfigError
from engscore.yamlconf import StrictModel, load_yaml, parse_yaml, validate_model

PROVIDERS_NAME = "mailbox_providers.yaml"
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_PATTERN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*(?:\.\*)?$")


def _pattern(value: str) -> str:
    text = value.strip().lower()
    if not _PATTERN.match(text):
        raise ValueError(
            f"{value!r} is not a domain (gmail.com) or a name followed by .* (outlook.*)"
        )
    return text


Pattern = Annotated[str, AfterValidator(_pattern)]
ProviderName = Annotated[str, Field(min_length=1)]


class ProvidersFile(StrictModel):
    """The schema of a mailbox providers file."""

    version: Literal[1] = 1
    providers: dict[ProviderName, list[Pattern]]


def default_providers_text() -> str:
    """The packaged mailbox providers map."""
    return resources.files("engscore.data").joinpath(PROVIDERS_NAME).read_text("utf-8")


def load_providers(path: Path | None = None) -> MailboxProviders:
    """Load a mailbox providers file; None loads the packaged map."""
    doc = (
        parse_yaml(default_providers_text(), f"(packaged) {PROVIDERS_NAME}")
        if path is None
        else load_yaml(path)
    )
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{doc.where(())}: a providers file is a mapping (version, providers)")
    spec = validate_model(ProvidersFile, doc)
    seen: dict[str, str] = {}
    for name, patterns in spec.providers.items():
        for index, pattern in enumerate(patterns):
            if pattern in seen:
                raise ConfigError(
                    f"{doc.where(('providers', name, index))}: providers.{name}[{index}]: "
                    f"{pattern!r} is already listed under {seen[pattern]}"
                )
            seen[pattern] = name
    return MailboxProviders(
        tuple((name, tuple(patterns)) for name, patterns in spec.providers.items())
    )
