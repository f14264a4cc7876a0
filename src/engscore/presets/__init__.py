"""Built-in presets and ``auto`` detection.

Each provider lives in its own module exposing ``PRESET``; this registry lists them.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import import_module

from engscore.errors import ConfigError
from engscore.presets.base import Preset

PRESET_MODULES = (
    "generic",
    "sendgrid",
    "mailgun",
    "ses",
    "postmark",
    "brevo",
    "klaviyo",
    "mailchimp",
    "sfmc",
)


def _load() -> dict[str, Preset]:
    presets: dict[str, Preset] = {}
    for module_name in PRESET_MODULES:
        try:
            module = import_module(f"engscore.presets.{module_name}")
        except ModuleNotFoundError:  # a provider module not written yet
            continue
        preset: Preset = module.PRESET
        presets[preset.name] = preset
    return presets


PRESETS: dict[str, Preset] = _load()
PRESET_NAMES: tuple[str, ...] = (*PRESETS, "auto")


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name is a ConfigError listing the valid ones."""
    try:
        return PRESETS[name.lower()]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}; choose one of: {', '.join(PRESET_NAMES)}"
        ) from None


def detect_preset(columns: Iterable[str]) -> Preset | None:
    """The most specific preset whose signature columns are all present, or None."""
    names = list(columns)
    for preset in sorted(PRESETS.values(), key=lambda p: -p.priority):
        if preset.matches(names):
            return preset
    return None
