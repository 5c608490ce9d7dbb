"""What every command needs: the configuration and the store, opened on first use."""

from __future__ import annotations

import time
from pathlib import Path

from gatewayd.config import Config, load_config
from gatewayd.store import Store, open_store


class CliContext:
    def __init__(self, config_path: str | None) -> None:
        self._config_path = config_path
        self._config: Config | None = None
        self._source: Path | None = None
        self._store: Store | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config, self._source = load_config(self._config_path)
        return self._config

    @property
    def config_source(self) -> Path | None:
        """The file the configuration came from; ``None`` for built-in defaults."""
        _ = self.config
        return self._source

    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.config.store.path)
        return self._store

    def now(self) -> float:
        return time.time()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
