"""The policies, followed live: each policy a lane of its own in one supervised loop."""

from __future__ import annotations

from functools import partial

from handlers.policies import PolicyRunner
from infra.loops import Follower, Lanes, Status


class PolicyFollower:
    """Runs `runner` until stopped: a policy that fails retries with back-off on its own
    (the other goes on), and the loop survives a lost database (see `infra.loops`)."""

    def __init__(self, runner: PolicyRunner, poll_seconds: float = 0.2) -> None:
        self.runner = runner
        self.lanes = Lanes("policies", [policy.name for policy in runner.policies])
        self._poll_seconds = poll_seconds
        self._follower: Follower | None = None

    def step(self) -> int:
        """One pass over every policy that is not pausing; returns the decisions recorded."""
        return sum(
            self.lanes.run(policy.name, partial(self.runner.catch_up_policy, policy))
            for policy in self.runner.policies
        )

    def start(self) -> PolicyFollower:
        """Follow the store in a background thread until `stop()`; returns self."""
        self._follower = Follower("policies", self.step, poll_seconds=self._poll_seconds)
        self._follower.start()
        return self

    def stop(self) -> None:
        """Stop following; returns once the thread has ended."""
        if self._follower is not None:
            self._follower.stop()
            self._follower = None

    def lag(self) -> dict[str, int]:
        """Per policy: notifications stored but not yet considered."""
        return self.runner.lag()

    def health(self) -> dict[str, Status]:
        """Per policy: running, or retrying with the error and the notification it is on."""
        return self.lanes.statuses()

    def runner_status(self) -> Status | None:
        """The loop's status (None when not following in this process)."""
        return None if self._follower is None else self._follower.status()
