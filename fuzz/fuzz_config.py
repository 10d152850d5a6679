"""atheris fuzz target for the settings loader (offhook.config.load_settings).

The node's settings are operator input: a TOML file and ``OFFHOOK_<SECTION>__<KEY>``
environment variables. Invariant: any file and any variables either give
``Settings`` or raise ``ConfigError`` with a message; anything else (a
``RecursionError`` out of tomllib or json, a ``UnicodeDecodeError``, a
``ValueError``) is a crash. Accepted settings must be usable: every listener
port in range, every timer finite and positive, the allow-lists parsed by
``net.acl.AllowList``, the database URL parsed by SQLAlchemy.

The first byte picks the mode:

- file: the rest is the TOML file (seeds: ``offhook demo-config`` and the
  test configs, ``fuzz/corpus/fuzz_config``);
- env: the rest drives a generator of variables (known section and key
  names mostly, values from an edge-case list or free text), with an empty
  or a small valid file.

The file is written to a private temporary directory (tmpfs when there is
one) for each input.

    python fuzz/fuzz_config.py -max_total_time=60 -max_len=2048 fuzz/corpus/fuzz_config
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from offhook.config import ConfigError, Settings, load_settings
    from offhook.net.acl import AllowList

from sqlalchemy.engine import make_url


def _scratch(prefix: str) -> Path:
    """This process's scratch directory (tmpfs when there is one).

    libFuzzer exits without running atexit handlers, so each run removes the
    directories of runs whose process is gone instead.
    """
    base = Path("/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir())
    for old in base.glob(f"{prefix}-*"):
        pid = old.name.rsplit("-", 1)[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    path = base / f"{prefix}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()
    return path


_DIR = _scratch("fuzz_config")
_FILE = _DIR / "offhook.toml"
_SECTIONS: dict[str, tuple[str, ...]] = {
    name: tuple(info.annotation.model_fields)
    for name, info in Settings.model_fields.items()
    if isinstance(info.annotation, type) and hasattr(info.annotation, "model_fields")
}
_VALUES = (
    "",
    "0",
    "-1",
    "65536",
    "5060",
    "1e999",
    "nan",
    "inf",
    "true",
    "[]",
    "[" * 2000,
    '["127.0.0.1/32", "::1/128"]',
    '["10.0.0.0/33"]',
    "127.0.0.1/8,  ::/0 ,",
    "sqlite:///offhook.db",
    "sqlite://",
    "postgresql://u:p@h:5432/db",
    "postgresql://u:p@h:99999999/db",
    "://",
    "2000-2099",
    "2099-2000",
    "9" * 5000,
    "MD5",
    '["SHA-256", "MD4"]',
    "debug",
    "json",
    "\x00",
    "'; DROP TABLE devices; --",
)


def _check(settings: Settings) -> None:
    for name in _SECTIONS:
        section = getattr(settings, name)
        for key, value in section:
            if isinstance(value, float) and not math.isfinite(value):
                raise AssertionError(f"[{name}] {key} = {value} accepted")
            if key.endswith("port") and isinstance(value, int) and not 0 <= value <= 65535:
                raise AssertionError(f"[{name}] {key} = {value} accepted")
            if key == "allow":
                AllowList(value)
    make_url(settings.database.url)


def _env(fdp: atheris.FuzzedDataProvider) -> dict[str, str]:
    env: dict[str, str] = {}
    names = list(_SECTIONS)
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        section = names[fdp.ConsumeIntInRange(0, len(names) - 1)]
        keys = _SECTIONS[section]
        key = keys[fdp.ConsumeIntInRange(0, len(keys) - 1)]
        if fdp.ConsumeIntInRange(0, 9) == 0:
            section = fdp.ConsumeUnicodeNoSurrogates(8)
        if fdp.ConsumeIntInRange(0, 9) == 0:
            key = fdp.ConsumeUnicodeNoSurrogates(8)
        if fdp.ConsumeBool():
            value = _VALUES[fdp.ConsumeIntInRange(0, len(_VALUES) - 1)]
        else:
            value = fdp.ConsumeUnicodeNoSurrogates(64)
        env[f"OFFHOOK_{section.upper()}__{key.upper()}"] = value.replace("\x00", "")
    return env


def test_one_input(data: bytes) -> None:
    if not data:
        return
    if data[0] % 2 == 0:
        _FILE.write_bytes(data[1:])
        env: dict[str, str] = {}
    else:
        fdp = atheris.FuzzedDataProvider(data[1:])
        env = _env(fdp)
        _FILE.write_bytes(b"[sip]\nport = 5070\n" if fdp.ConsumeBool() else b"")
    try:
        settings = load_settings(_FILE, env=env)
    except ConfigError as err:
        if not str(err):
            raise AssertionError("ConfigError without a message") from None
        return
    _check(settings)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
