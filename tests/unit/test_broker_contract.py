"""The broker contract on the in-memory broker and on the ORM broker over SQLite."""

import pytest

from djtasks.brokers.database import DatabaseBroker
from tests.broker_contract import BrokerContract, ConcurrentBrokerContract, memory_broker  # noqa: F401


class TestMemoryBroker(BrokerContract, ConcurrentBrokerContract):
    @pytest.fixture
    def broker(self, memory_broker):  # noqa: ANN001, ANN201, F811
        return memory_broker


@pytest.mark.django_db
class TestDatabaseBrokerOnSQLite(BrokerContract):
    @pytest.fixture
    def broker(self):  # noqa: ANN201
        return DatabaseBroker("default")
