"""partnerfleet's applications: commands as methods, and (later) policies that follow the store."""

from handlers.fleet import PartnerFleet

__all__ = ["PartnerFleet"]
