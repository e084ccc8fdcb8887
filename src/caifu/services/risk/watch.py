"""The watched folder: news files dropped into a folder are taken in and moved aside.

    DIR/news_0930.jsonl ──► Intake.take_file ──► DIR/processed/news_0930.jsonl
                                  │ the file refused whole (format, encoding, header)
                                  ▼
                            DIR/rejected/news_0930.jsonl + news_0930.jsonl.error.txt

Polling, not file-system events: ``watchdog`` is not among caifu's dependencies, a poll every
few seconds is well within the minutes news takes to matter, and it behaves the same on a
network share, where inotify sees nothing. A file is taken only once its size and
modification time have not changed between two polls, so a file still being copied in is
left for the next round; names starting with ``.`` or ending in ``.tmp``/``.part`` are
never taken. A file whose documents are partly rejected is *processed*: its rejected
documents are kept in ``risk_rejections``. The stories a file founded are then processed
(``services/risk/processing``: link → classify → alerts and advisor tasks), each story's
outcome or error in the file's ``Outcome.processed``; the file is moved first, so a failure
in processing never takes it in twice (``caifu risk process`` retries the story).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from caifu.adapters.sources.news import SUFFIXES
from caifu.core.errors import SourceError
from caifu.services.container import Container
from caifu.services.platform.workspace import get_tenant
from caifu.services.risk.intake import Intake, IntakeReport
from caifu.services.risk.processing import StoryProcessed, after_intake

PROCESSED, REJECTED = "processed", "rejected"


@dataclass
class Outcome:
    name: str
    moved_to: Path
    report: IntakeReport | None = None  # None: the file was refused whole
    error: str = ""
    processed: list[StoryProcessed] = field(default_factory=list)  # the stories it founded


@dataclass
class Watcher:
    c: Container
    tenant: str
    folder: Path
    settle_polls: int = 1  # polls a file must look the same before it is taken (0: at once)
    _seen: dict[Path, tuple[tuple[int, int], int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        get_tenant(self.c, self.tenant)
        if not self.folder.is_dir():
            from caifu.core.errors import ConfigError

            raise ConfigError(f"{self.folder}: not a folder")
        for sub in (PROCESSED, REJECTED):
            (self.folder / sub).mkdir(exist_ok=True)

    def _ready(self) -> list[Path]:
        ready, now_seen = [], {}
        for path in sorted(self.folder.iterdir()):
            name = path.name
            if (not path.is_file() or name.startswith(".") or name.endswith((".tmp", ".part"))
                    or path.suffix.lower() not in SUFFIXES):
                continue
            st = path.stat()
            stamp = (st.st_size, st.st_mtime_ns)
            old = self._seen.get(path)
            same = old[1] + 1 if old is not None and old[0] == stamp else 0
            now_seen[path] = (stamp, same)
            if same >= self.settle_polls:
                ready.append(path)
        self._seen = now_seen
        return ready

    def poll(self) -> list[Outcome]:
        """Take in every file that is ready; return what became of each."""
        out = []
        for path in self._ready():
            try:
                report = Intake(self.c).take_file(self.tenant, path, channel="watch")
            except SourceError as exc:
                dest = _move(path, self.folder / REJECTED)
                dest.with_name(dest.name + ".error.txt").write_text(str(exc) + "\n",
                                                                    encoding="utf-8")
                out.append(Outcome(path.name, dest, None, str(exc)))
            else:
                moved = _move(path, self.folder / PROCESSED)  # its documents are committed
                out.append(Outcome(path.name, moved, report,
                                   processed=after_intake(self.c, self.tenant, report)))
            self._seen.pop(path, None)
        return out


def _move(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder``, never over an earlier file of the same name."""
    dest = folder / path.name
    if dest.exists():
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        dest = folder / f"{path.stem}.{stamp}{path.suffix}"
    return path.rename(dest)
