"""partnerfleet's applications: commands as methods, and policies that follow the store."""

from handlers.fleet import PartnerFleet
from handlers.policies import PolicyRunner, all_policies

__all__ = ["PartnerFleet", "PolicyRunner", "all_policies"]
