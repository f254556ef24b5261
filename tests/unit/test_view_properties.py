"""Any interleaving of commands leaves the views consistent with the aggregates, and rebuildable."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant

from domain import CustomerGroup, NotFoundError
from projections.customer_queries import customer_dashboard, list_customers
from tests.scopes import partner_of
from tests.unit.test_stateful import CUSTOMERS, PARTNERS, SERIALS, USERS, FleetMachine
from tests.views import assert_rebuild_equals_live, memory_runner


class ViewMachine(FleetMachine):
    """The command state machine, with every view followed after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.runner = memory_runner(self.fleet, batch_size=5)

    @invariant()
    def views_list_only_linked_devices(self) -> None:
        """R-LNK-1, R-LNK-6: a partner's dashboard lists a device iff it is linked to it."""
        self.runner.catch_up()
        with self.runner.db.transaction() as tx:
            for location in PARTNERS:
                user = "anna@" + location
                for serial, customer in zip(SERIALS, CUSTOMERS, strict=True):
                    group_id = str(CustomerGroup.id_for(location, customer))
                    linked = location in self.links[serial].values()
                    try:
                        shown = customer_dashboard(
                            tx, partner_of(self.fleet, user), group_id
                        ).devices
                    except NotFoundError:  # the partner has no group for this customer yet
                        shown = []
                    assert (serial in {d.serial for d in shown}) == linked

    @invariant()
    def favourites_only_is_the_favourite_subset_of_all_customers(self) -> None:
        """R-FAV-3, R-FAV-5: Favorites Only shows exactly the marked rows of All Customers."""
        self.runner.catch_up()
        with self.runner.db.transaction() as tx:
            for user in USERS:
                everything = list_customers(
                    tx, partner_of(self.fleet, user), view="all_customers", limit=200
                ).rows
                marked = [r for r in everything if r.favourite]
                assert {r.group_id for r in marked} == {str(g) for g in self.favourites[user]}
                if marked:
                    only = list_customers(
                        tx, partner_of(self.fleet, user), view="favorites_only", limit=200
                    ).rows
                    assert only == marked

    def teardown(self) -> None:
        """Every view rebuilt from the history equals the one followed step by step."""
        assert_rebuild_equals_live(self.runner)


ViewMachine.TestCase.settings = settings(
    max_examples=12,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_views_stay_consistent_with_the_aggregates = ViewMachine.TestCase
