"""partnerfleet's read models: one View per module, with its queries beside it."""

from projections.base import View
from projections.consent import ConsentView
from projections.customers import CustomersView
from projections.dashboards import DashboardsView
from projections.environment import EnvironmentView
from projections.holding import HoldingView
from projections.partners import PartnersView
from projections.repair_queues import RepairQueuesView
from projections.service import ServiceView


def all_views() -> list[View]:
    """A fresh instance of every read model."""
    return [
        CustomersView(),
        ServiceView(),
        HoldingView(),
        ConsentView(),
        RepairQueuesView(),
        EnvironmentView(),
        DashboardsView(),
        PartnersView(),
    ]


__all__ = [
    "ConsentView",
    "CustomersView",
    "DashboardsView",
    "EnvironmentView",
    "HoldingView",
    "PartnersView",
    "RepairQueuesView",
    "ServiceView",
    "View",
    "all_views",
]
