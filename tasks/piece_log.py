"""What a worker writes while it runs a piece goes into that piece's log too (`orchestrator.piecelog`)."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from orchestrator.piecelog import PieceLog

PACKAGES = ("tasks", "bridge", "orchestrator")  # whose log lines a piece's log keeps


class PieceLogHandler(logging.Handler):
    """Copies the farm's own log records of the thread running a piece into the piece's log.

    Note: used as a context manager around one piece; it lowers the farm's loggers to INFO
    for that time (Celery leaves the root logger alone here) and puts their levels back after.
    """

    def __init__(self, log: PieceLog, job_id: str, piece: str, node: str) -> None:
        super().__init__(logging.INFO)
        self.log, self.job_id, self.piece, self.node = log, job_id, piece, node
        self.thread = threading.get_ident()
        self._levels: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread or not record.name.startswith(PACKAGES):
            return
        try:
            self.log.append(self.job_id, self.piece, self.node, record.levelname, record.getMessage())
        except Exception:  # a log line must never fail the piece; logging's own handler reports it
            self.handleError(record)

    def __enter__(self) -> PieceLogHandler:
        for name in PACKAGES:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for name in PACKAGES:
            logger = logging.getLogger(name)
            logger.removeHandler(self)
            logger.setLevel(self._levels.get(name, logging.NOTSET))
