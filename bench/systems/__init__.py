"""The systems under test. Each one is started once, serves timed requests one by one (`run`) or a batch
with several in flight (`batch`), reports the peak RSS of every process doing the work, and is stopped."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..common import Batch, Run
from ..inputs import Input


class System(ABC):
    key: str  # short id used in results.json
    label: str  # row name in the table
    note: str = ""

    @abstractmethod
    def start(self, inputs: list[Input]) -> None: ...

    @abstractmethod
    def run(self, inp: Input) -> Run: ...

    @abstractmethod
    def batch(self, inputs: list[Input], concurrency: int) -> Batch:
        """Every input once, `concurrency` at a time; wall time from the first send to the last reply."""

    @abstractmethod
    def peak_rss(self) -> dict[str, float]:
        """Peak RSS (MiB) of each process doing the work, by role; read while they are alive."""

    @abstractmethod
    def stop(self) -> None: ...
