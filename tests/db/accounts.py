"""The account stores over one index's database, for the tests of db/users.py, organizations.py, teams.py,
grants.py, app_tokens.py and namespaces.py."""

from __future__ import annotations

from dataclasses import dataclass

from trustyard.db.app_tokens import AppTokenStore
from trustyard.db.grants import GrantStore
from trustyard.db.index import Index
from trustyard.db.namespaces import NamespaceStore
from trustyard.db.organizations import OrganizationStore
from trustyard.db.teams import TeamStore
from trustyard.db.users import UserStore


@dataclass
class Stores:
    users: UserStore
    organizations: OrganizationStore
    teams: TeamStore
    grants: GrantStore
    app_tokens: AppTokenStore
    namespaces: NamespaceStore


def stores(index: Index) -> Stores:
    db = index.db
    return Stores(
        UserStore(db), OrganizationStore(db), TeamStore(db), GrantStore(db), AppTokenStore(db), NamespaceStore(db)
    )
