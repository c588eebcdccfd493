"""An in-memory sender for tests: records what it is given, fails when told to."""

from __future__ import annotations

from collections import deque
from email.message import EmailMessage

from notifications.smtp import DeliveryFailure, PermanentFailure, TransientFailure


class FakeSender:
    """Records every accepted message in `sent`; plays scripted failures first, in order.

    >>> sender = FakeSender().fail_transient("451 4.3.0 Réessayez").fail_permanent()
    The first call raises TransientFailure, the second PermanentFailure, later calls succeed.
    """

    def __init__(self, reply: str = "250 2.0.0 OK") -> None:
        self.reply = reply
        self.sent: list[EmailMessage] = []
        self.calls = 0
        self._script: deque[DeliveryFailure | None] = deque()

    def fail_transient(self, answer: str = "451 4.3.0 Réessayez plus tard", times: int = 1) -> FakeSender:
        """Make the next `times` calls fail with a TransientFailure carrying `answer`."""
        return self._push([TransientFailure(answer, _code(answer)) for _ in range(times)])

    def fail_permanent(self, answer: str = "550 5.1.1 Destinataire inconnu", times: int = 1) -> FakeSender:
        """Make the next `times` calls fail with a PermanentFailure carrying `answer`."""
        return self._push([PermanentFailure(answer, _code(answer)) for _ in range(times)])

    def succeed(self, times: int = 1) -> FakeSender:
        """Insert `times` successful calls in the script (to interleave with failures)."""
        return self._push([None] * times)

    async def send(self, message: EmailMessage) -> str:
        """Play the next scripted outcome; record and accept the message when it is a success."""
        self.calls += 1
        outcome = self._script.popleft() if self._script else None
        if outcome is not None:
            raise outcome
        self.sent.append(message)
        return self.reply

    def _push(self, outcomes: list[DeliveryFailure | None]) -> FakeSender:
        self._script.extend(outcomes)
        return self


def _code(answer: str) -> int | None:
    head = answer[:3]
    return int(head) if head.isdigit() else None
