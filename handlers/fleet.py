"""PartnerFleet: every command of the service over one event store."""

from __future__ import annotations

from collections.abc import Mapping

from eventsourcing.persistence import JSONTranscoder

from domain.intake import Rejection
from handlers.alert_intake import AlertIntakeCommands
from handlers.base import ConflictError
from handlers.customers import CustomerGroupCommands
from handlers.devices import DeviceCommands, NewDevice, PartnerChoice
from handlers.holding import HoldingCommands
from handlers.intake import IntakeOutcome
from handlers.key_claims import KeyClaimCommands
from handlers.partners import PartnerCommands
from handlers.routing import RoutingCommands
from handlers.transcoding import DataclassAsDict, ModelAsDict


class PartnerFleet(
    PartnerCommands,
    DeviceCommands,
    CustomerGroupCommands,
    HoldingCommands,
    AlertIntakeCommands,
    KeyClaimCommands,
    RoutingCommands,
):
    """The command side of partnerfleet (one application, one notification log)."""

    def __init__(self, env: Mapping[str, str] | None = None, *, cpin_key: bytes | None = None):
        """`env` selects the storage (eventsourcing's settings); `cpin_key` keys the
        customers' cPIN verifiers (domain/cpin.py), the demo key when None."""
        super().__init__(env=env)
        if cpin_key is not None:
            self.cpin_key = cpin_key

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        # The intake commands' results, kept with an Idempotency-Key to be answered again.
        super().register_transcodings(transcoder)
        transcoder.register(DataclassAsDict(IntakeOutcome))
        transcoder.register(ModelAsDict(Rejection))


__all__ = ["ConflictError", "IntakeOutcome", "NewDevice", "PartnerChoice", "PartnerFleet"]
