"""The IDs of the domain rules (DOMAIN.md, "partnerfleet — domain rules"), by section.

A refusal names the rule that made it (`DomainError.rule`); tests/unit/test_rule_ids.py
proves every ID the code names is one of these, and that these are DOMAIN.md's.
"""

from __future__ import annotations

RULE_IDS: frozenset[str] = frozenset(
    [
        *(f"R-PAR-{n}" for n in range(1, 5)),  # partners and users
        *(f"R-LNK-{n}" for n in range(1, 7)),  # linking devices to a partner
        *(f"R-CON-{n}" for n in range(1, 5)),  # consent
        *(f"R-FAV-{n}" for n in range(1, 6)),  # All Customers / Favorites Only
        *(f"R-GRP-{n}" for n in range(1, 4)),  # customer groups and device groups
        *(f"R-SVC-{n}" for n in range(1, 4)),  # service events and service levels
        *(f"R-HLD-{n}" for n in range(1, 4)),  # holding tenant and transfers
        *(f"R-ALR-{n}" for n in range(1, 5)),  # alerts and repair cases
    ]
)
